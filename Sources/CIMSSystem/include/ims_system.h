#pragma once
#include <sys/types.h>

/// Spawns `path` in a new session (so it leads its own process group) with
/// stdin, stdout and stderr connected to fresh pipes. The parent's ends are
/// close-on-exec and non-blocking. Signal dispositions and mask are reset to
/// defaults in the child. Returns 0 on success or an errno value.
int ims_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
              pid_t *out_pid, int *out_stdin, int *out_stdout, int *out_stderr);

/// Spawns `path` in a new session, as `ims_spawn` does, but detached: stdin is /dev/null, and stdout and
/// stderr append to `log_path` (created 0600; /dev/null when NULL). Nothing is left open in the parent:
/// the caller keeps only the pid (reap it, or let it be re-parented when the caller exits).
/// Returns 0 on success or an errno value.
int ims_spawn_detached(const char *path, char *const argv[], char *const envp[], const char *cwd,
                       const char *log_path, pid_t *out_pid);

/// pidfd_open(2): a file descriptor that becomes readable when `pid` exits.
/// Returns -1 and sets errno on failure.
int ims_pidfd_open(pid_t pid);

/// Reaps `pid` (blocking) and returns its raw wait status, or -1.
int ims_wait(pid_t pid);

/// Decodes a raw wait status: returns 1 when exited (code in *value),
/// 2 when killed by a signal (signal in *value), 0 otherwise.
int ims_decode_status(int status, int *value);

/// Duplicates fd 1 (the protocol channel) to a new close-on-exec descriptor
/// and points fd 1 at fd 2, so that stray writes to stdout reach stderr.
/// Returns the new protocol descriptor or -1.
int ims_take_protocol_stdout(void);

/// Ignores SIGPIPE for the whole process.
void ims_ignore_sigpipe(void);

/// Blocks until `fd` is readable or `timeout_ms` passes (-1 = forever).
/// Returns >0 when readable, 0 on timeout, -1 on error.
int ims_wait_readable(int fd, int timeout_ms);

/// pipe2(O_CLOEXEC | O_NONBLOCK). Returns 0 or -1.
int ims_pipe_nonblocking(int fds[2]);

/// Checks, without reaping, whether `pid` has exited. Returns 1 when it
/// exited (code in *value), 2 when killed by a signal (signal in *value),
/// 0 when still running, -1 on error.
int ims_peek_exit(pid_t pid, int *value);

/// Makes this process a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so
/// orphaned grandchildren of plugins are re-parented here and can be reaped.
void ims_become_subreaper(void);

/// Reaps every child in process group `pgid` (after they were killed),
/// waiting up to `timeout_ms`. Returns the number reaped.
int ims_reap_group(pid_t pgid, int timeout_ms);

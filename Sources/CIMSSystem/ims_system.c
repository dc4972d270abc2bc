#define _GNU_SOURCE
#include "ims_system.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static void close_pair(int p[2]) {
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
}

/* posix_spawn in a new session with fds 0-2 from `fd0`..`fd2` and nothing else open, signal dispositions and
   mask reset. The one place where ims starts a process. */
static int spawn_with_fds(const char *path, char *const argv[], char *const envp[], const char *cwd,
                          int fd0, int fd1, int fd2, pid_t *out_pid) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, fd0, 0);
    posix_spawn_file_actions_adddup2(&fa, fd1, 1);
    posix_spawn_file_actions_adddup2(&fa, fd2, 2);
    if (cwd != NULL) posix_spawn_file_actions_addchdir_np(&fa, cwd);
    /* The child gets stdin, stdout and stderr only: no descriptor the host (or whoever started the host)
       left open without O_CLOEXEC leaks into it. A leaked end of a parent's socketpair would keep that
       parent from ever seeing the host exit (Foundation's Process watches one), and a plugin has no business
       holding the catalog's files. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc == 0) *out_pid = pid;
    return rc;
}

int ims_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
              pid_t *out_pid, int *out_stdin, int *out_stdout, int *out_stderr) {
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        int e = errno;
        close_pair(in); close_pair(out); close_pair(err);
        return e;
    }
    pid_t pid = 0;
    int rc = spawn_with_fds(path, argv, envp, cwd, in[0], out[1], err[1], &pid);
    close(in[0]); close(out[1]); close(err[1]);
    if (rc != 0) {
        close(in[1]); close(out[0]); close(err[0]);
        return rc;
    }
    fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    fcntl(err[0], F_SETFL, fcntl(err[0], F_GETFL) | O_NONBLOCK);
    *out_pid = pid;
    *out_stdin = in[1];
    *out_stdout = out[0];
    *out_stderr = err[0];
    return 0;
}

int ims_spawn_detached(const char *path, char *const argv[], char *const envp[], const char *cwd,
                       const char *log_path, pid_t *out_pid) {
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) return errno;
    int log_fd = log_path != NULL ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)
                                  : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (log_fd < 0) {
        int e = errno;
        close(null_fd);
        return e;
    }
    int rc = spawn_with_fds(path, argv, envp, cwd, null_fd, log_fd, log_fd, out_pid);
    close(null_fd);
    close(log_fd);
    return rc;
}

int ims_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int ims_wait(pid_t pid) {
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, 0);
        if (r == pid) return status;
        if (r < 0 && errno == EINTR) continue;
        return -1;
    }
}

int ims_decode_status(int status, int *value) {
    if (WIFEXITED(status)) { *value = WEXITSTATUS(status); return 1; }
    if (WIFSIGNALED(status)) { *value = WTERMSIG(status); return 2; }
    *value = 0;
    return 0;
}

int ims_take_protocol_stdout(void) {
    int fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return -1;
    fflush(stdout);
    if (dup2(2, 1) < 0) return -1;
    /* fd 1 now reaches the job's log: line-buffer stdio's stdout so print() output appears when it is made. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    return fd;
}

void ims_ignore_sigpipe(void) {
    signal(SIGPIPE, SIG_IGN);
}

int ims_wait_readable(int fd, int timeout_ms) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        return r;
    }
}

int ims_pipe_nonblocking(int fds[2]) {
    return pipe2(fds, O_CLOEXEC | O_NONBLOCK);
}

int ims_peek_exit(pid_t pid, int *value) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    for (;;) {
        int rc = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT | WNOHANG);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return -1;
        break;
    }
    if (info.si_pid != pid) return 0;
    *value = info.si_status;
    return info.si_code == CLD_EXITED ? 1 : 2;
}

#include <sys/prctl.h>
#include <time.h>

void ims_become_subreaper(void) {
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int ims_reap_group(pid_t pgid, int timeout_ms) {
    int reaped = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int status = 0;
        pid_t r = waitpid(-pgid, &status, WNOHANG);
        if (r > 0) { reaped++; continue; }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return reaped; /* ECHILD: nothing left in the group that is ours */
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= timeout_ms) return reaped;
        struct timespec pause = {0, 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

import GRDB

/// The catalog's versioned schema. Never edit a registered migration: add a new one.
///
/// Timestamps are whole microseconds since the Unix epoch (UTC) in INTEGER columns; ids are lowercase UUID
/// text; enums are their IMS strings; lists of structured values are JSON text. Live and soft-deleted records
/// share one table per kind: `deleted` is NULL for live records, so soft delete and undelete change one
/// column (and the link) and can never lose a field.
enum CatalogSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS recipes (
                    id TEXT PRIMARY KEY NOT NULL,
                    created INTEGER NOT NULL,
                    name TEXT NOT NULL CHECK (name <> ''),
                    link_path TEXT,
                    link_etag TEXT,
                    link_type TEXT,
                    recipe_type TEXT NOT NULL,
                    linux_distribution TEXT NOT NULL,
                    template_dictionary TEXT NOT NULL DEFAULT '[]',
                    require_dkms INTEGER NOT NULL DEFAULT 1,
                    arch TEXT NOT NULL DEFAULT 'x86_64',
                    deleted INTEGER
                );
                CREATE INDEX IF NOT EXISTS recipes_by_created ON recipes (deleted, created, id);
                CREATE UNIQUE INDEX IF NOT EXISTS recipes_live_link ON recipes (link_path)
                    WHERE deleted IS NULL AND link_path IS NOT NULL;

                CREATE TABLE IF NOT EXISTS images (
                    id TEXT PRIMARY KEY NOT NULL,
                    created INTEGER NOT NULL,
                    name TEXT NOT NULL CHECK (name <> ''),
                    link_path TEXT,
                    link_etag TEXT,
                    link_type TEXT,
                    arch TEXT NOT NULL DEFAULT 'x86_64',
                    deleted INTEGER
                );
                CREATE INDEX IF NOT EXISTS images_by_created ON images (deleted, created, id);
                CREATE UNIQUE INDEX IF NOT EXISTS images_live_link ON images (link_path)
                    WHERE deleted IS NULL AND link_path IS NOT NULL;

                CREATE TABLE IF NOT EXISTS image_metadata (
                    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (image_id, key)
                ) WITHOUT ROWID;

                CREATE TABLE IF NOT EXISTS public_keys (
                    id TEXT PRIMARY KEY NOT NULL,
                    created INTEGER NOT NULL,
                    name TEXT NOT NULL CHECK (name <> ''),
                    public_key TEXT NOT NULL CHECK (public_key <> ''),
                    deleted INTEGER
                );
                CREATE INDEX IF NOT EXISTS public_keys_by_created ON public_keys (deleted, created, id);

                CREATE TABLE IF NOT EXISTS jobs (
                    id TEXT PRIMARY KEY NOT NULL,
                    created INTEGER NOT NULL,
                    job_type TEXT NOT NULL,
                    artifact_id TEXT NOT NULL,
                    public_key_id TEXT,
                    image_root_archive_name TEXT NOT NULL,
                    enable_debug INTEGER NOT NULL DEFAULT 0,
                    build_env_size INTEGER NOT NULL DEFAULT 60,
                    job_mem_size INTEGER NOT NULL DEFAULT 8,
                    kernel_file_name TEXT NOT NULL,
                    initrd_file_name TEXT NOT NULL DEFAULT 'initrd',
                    kernel_parameters_file_name TEXT NOT NULL DEFAULT 'kernel-parameters',
                    ssh_containers TEXT NOT NULL DEFAULT '[]',
                    require_dkms INTEGER NOT NULL DEFAULT 1,
                    status TEXT NOT NULL DEFAULT 'creating',
                    resultant_image_id TEXT,
                    arch TEXT NOT NULL DEFAULT 'x86_64',
                    kubernetes_job TEXT,
                    kubernetes_service TEXT,
                    kubernetes_configmap TEXT,
                    kubernetes_pvc TEXT,
                    kubernetes_secret TEXT,
                    kubernetes_namespace TEXT,
                    remote_build_node TEXT,
                    status_history TEXT NOT NULL DEFAULT '[]',
                    error TEXT,
                    workspace TEXT,
                    pid INTEGER,
                    host TEXT,
                    timeout_seconds INTEGER
                );
                CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created, id);
                CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status);

                CREATE TABLE IF NOT EXISTS job_events (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
                    time INTEGER NOT NULL,
                    phase TEXT,
                    plugin_id TEXT,
                    kind TEXT NOT NULL,
                    data TEXT NOT NULL
                );
                CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, sequence);
                """)
        }
        // Jobs run on other hosts (executors): which executor, the Slurm job id, the runner's token (its SHA-256 only)
        // and when it expires, and the runner's last report (its heartbeat).
        migrator.registerMigration("v2-executors") { db in
            try db.execute(sql: """
                ALTER TABLE jobs ADD COLUMN executor TEXT;
                ALTER TABLE jobs ADD COLUMN slurm_job_id TEXT;
                ALTER TABLE jobs ADD COLUMN last_report INTEGER;
                ALTER TABLE jobs ADD COLUMN runner_token_sha256 TEXT;
                ALTER TABLE jobs ADD COLUMN runner_token_expires INTEGER;
                """)
        }
        return migrator
    }
}

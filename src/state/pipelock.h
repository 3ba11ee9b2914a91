/* The pipeline lock: one process at a time owns a pipeline, that is its
 * replication slot, its destinations' write positions and its state store's
 * progress.
 *
 * The lock is a POSIX record lock (fcntl F_SETLK, a write lock over the whole
 * file) on `{state_dir}/{pipeline_id}/lock`, taken before anything else is
 * opened and held for as long as the owner needs it: `cdc run` for its whole
 * life, `cdc deploy`, `cdc undeploy` and `cdc dlq replay` while they work.
 * The kernel drops it when the process ends, however it ends (kill -9
 * included), so a stale lock never blocks anyone, and it names the holder's
 * pid (F_GETLK), which the refusal quotes.  The file's text (pid, command,
 * start time) is for people and for the refusal's wording.
 *
 * `cdc dlq replay` also takes `replay.lock` beside it, so two replays never
 * deliver the same entries at once.
 *
 * POSIX record locks belong to the process, and closing ANY descriptor of
 * the file drops them: nothing but this module opens these files, and a
 * process does not probe a lock it holds. */
#ifndef CDC_STATE_PIPELOCK_H
#define CDC_STATE_PIPELOCK_H

#include <stddef.h>
#include <stdint.h>

#define PIPELOCK_OWNER  "lock"        /* run, deploy, undeploy, dlq replay */
#define PIPELOCK_REPLAY "replay.lock" /* dlq replay against dlq replay */

struct pipelock;

/* Who holds a lock, as far as the kernel and the lock file tell. */
struct pipelock_holder {
    long pid;         /* from the kernel */
    char command[32]; /* "run", "deploy", …; "" if the file does not say */
    int64_t since_us; /* wall clock when the holder took it; 0 if unknown */
};

/* "{state_dir}/{pipeline_id}/{name}", heap-allocated. */
char *pipelock_path(const char *state_dir, const char *pipeline_id, const char *name);

/* Takes lock `name` (PIPELOCK_OWNER or PIPELOCK_REPLAY) of a pipeline for
 * `command`, creating the directory and the file as needed.  Never waits.
 * Returns 0 with *out set; CDC_EBUSY if another process holds it (*holder
 * filled if holder is not NULL, err says who: "pipeline P is in use by `cdc
 * run` (pid N, since …)"); CDC_EIO if the file cannot be made or locked. */
int pipelock_acquire(struct pipelock **out, const char *state_dir, const char *pipeline_id,
                     const char *name, const char *command, struct pipelock_holder *holder,
                     char *err, size_t errlen);
/* Releases the lock and frees lk.  NULL is a no-op. */
void pipelock_release(struct pipelock *lk);

/* Whether another process holds lock `name` of a pipeline, without taking
 * it: 1 (and *holder), 0 (free, or no lock file yet), or CDC_EIO. */
int pipelock_probe(const char *state_dir, const char *pipeline_id, const char *name,
                   struct pipelock_holder *holder, char *err, size_t errlen);

/* "`cdc run` (pid 4242, since 2024-06-12 10:00:01 UTC)" into out. */
void pipelock_describe(const struct pipelock_holder *h, char *out, size_t outlen);

#endif

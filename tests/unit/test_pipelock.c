/* The pipeline lock: a second process is refused with the holder's pid and
 * command, the lock dies with its holder (however it ends), probing does not
 * take it, the two lock names are independent, a holder is named even when
 * asked about just after it took the lock, and an unusable state
 * directory is an I/O error, not a refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "state/pipelock.h"
#include "util/err.h"

static char dir[] = "/tmp/cdc-pipelock-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A child that takes lock `name` of pipeline `p` as `command`, reports on
 * the pipe, and holds it until killed.  Returns its pid. */
static pid_t hold_in_child(const char *p, const char *name, const char *command)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct pipelock *lk;
        char err[512];
        char ok = pipelock_acquire(&lk, dir, p, name, command, NULL, err, sizeof err) == 0;
        if (write(fds[1], &ok, 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    close(fds[1]);
    char ok = 0;
    assert_int_equal(read(fds[0], &ok, 1), 1);
    close(fds[0]);
    assert_true(ok);
    return pid;
}

static void end_child(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
}

static void test_second_process_refused(void **state)
{
    (void)state;
    pid_t child = hold_in_child("orders", PIPELOCK_OWNER, "run");
    struct pipelock *lk = NULL;
    struct pipelock_holder h;
    char err[1024];
    int rc = pipelock_acquire(&lk, dir, "orders", PIPELOCK_OWNER, "undeploy", &h, err, sizeof err);
    assert_int_equal(rc, CDC_EBUSY);
    assert_null(lk);
    assert_int_equal(h.pid, (long)child);
    assert_string_equal(h.command, "run");
    assert_true(h.since_us > 0);
    char want[64];
    snprintf(want, sizeof want, "`cdc run` (pid %ld, since ", (long)child);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "pipeline orders is in use by"));

    /* Probing does not take it, and says the same. */
    struct pipelock_holder p;
    assert_int_equal(pipelock_probe(dir, "orders", PIPELOCK_OWNER, &p, err, sizeof err), 1);
    assert_int_equal(p.pid, (long)child);
    /* The other lock name is free, another pipeline too. */
    assert_int_equal(pipelock_probe(dir, "orders", PIPELOCK_REPLAY, &p, err, sizeof err), 0);
    assert_int_equal(
        pipelock_acquire(&lk, dir, "orders", PIPELOCK_REPLAY, "dlq replay", NULL, err, sizeof err),
        0);
    pipelock_release(lk);
    assert_int_equal(
        pipelock_acquire(&lk, dir, "other", PIPELOCK_OWNER, "run", NULL, err, sizeof err), 0);
    pipelock_release(lk);

    /* kill -9: the kernel lets go; nothing stale remains. */
    end_child(child);
    assert_int_equal(pipelock_probe(dir, "orders", PIPELOCK_OWNER, &p, err, sizeof err), 0);
    assert_int_equal(
        pipelock_acquire(&lk, dir, "orders", PIPELOCK_OWNER, "run", NULL, err, sizeof err), 0);
    pipelock_release(lk);
}

static void test_released_lock_is_free(void **state)
{
    (void)state;
    struct pipelock *lk = NULL;
    char err[1024];
    assert_int_equal(
        pipelock_acquire(&lk, dir, "p2", PIPELOCK_OWNER, "dlq replay", NULL, err, sizeof err), 0);
    pipelock_release(lk);
    /* A child sees it free and takes it; its command has a space in it. */
    pid_t child = hold_in_child("p2", PIPELOCK_OWNER, "dlq replay");
    struct pipelock_holder h;
    assert_int_equal(pipelock_acquire(&lk, dir, "p2", PIPELOCK_OWNER, "run", &h, err, sizeof err),
                     CDC_EBUSY);
    assert_string_equal(h.command, "dlq replay");
    end_child(child);
    pipelock_release(NULL);
}

/* A holder that has taken the lock but not yet written its name (the
 * instant between the two in pipelock_acquire, stretched here to 200 ms):
 * the refused process waits for the name instead of saying "another
 * process". */
static void test_holder_named_after_locking(void **state)
{
    (void)state;
    char *path = pipelock_path(dir, "p3", PIPELOCK_OWNER);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/p3", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(fds[0]);
        int fd = open(path, O_RDWR | O_CREAT, 0600);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0 || write(fds[1], "x", 1) != 1)
            _exit(2);
        usleep(200 * 1000);
        char text[96];
        int n =
            snprintf(text, sizeof text, "pid=%ld since_us=1 command=snapshot\n", (long)getpid());
        if (pwrite(fd, text, (size_t)n, 0) != n)
            _exit(2);
        for (;;)
            pause();
    }
    close(fds[1]);
    char x;
    assert_int_equal(read(fds[0], &x, 1), 1);
    close(fds[0]);
    struct pipelock *lk = NULL;
    struct pipelock_holder h;
    char err[1024];
    int rc = pipelock_acquire(&lk, dir, "p3", PIPELOCK_OWNER, "run", &h, err, sizeof err);
    end_child(child); /* before any assertion: a failed one leaves the test */
    free(path);
    assert_int_equal(rc, CDC_EBUSY);
    assert_string_equal(h.command, "snapshot");
    assert_non_null(strstr(err, "`cdc snapshot` (pid"));
}

static void test_unusable_directory(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/blocked", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct pipelock *lk = NULL;
    char err[1024];
    /* state_dir/blocked is a file: the pipeline's directory cannot exist. */
    int rc = pipelock_acquire(&lk, path, "p", PIPELOCK_OWNER, "run", NULL, err, sizeof err);
    assert_int_equal(rc, CDC_EIO);
    assert_non_null(strstr(err, "cannot"));
    assert_int_equal(pipelock_probe(path, "p", PIPELOCK_OWNER, NULL, err, sizeof err), 0);
}

static void test_paths(void **state)
{
    (void)state;
    char *p = pipelock_path("/var/lib/cdc//", "orders", PIPELOCK_OWNER);
    assert_string_equal(p, "/var/lib/cdc/orders/lock");
    free(p);
    p = pipelock_path("rel", "x", PIPELOCK_REPLAY);
    assert_string_equal(p, "rel/x/replay.lock");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_process_refused),
        cmocka_unit_test(test_released_lock_is_free),
        cmocka_unit_test(test_holder_named_after_locking),
        cmocka_unit_test(test_unusable_directory),
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

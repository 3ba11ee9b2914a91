/* File sink: one writer at a time.  A second opener of a file another sink
 * holds open is refused and leaves a line in progress alone; once the first
 * writer is gone, a torn last line is cut at open as before.  ready() says
 * whether the file system has room. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/json.h"
#include "sink/file/file_sink.h"
#include "sink/sink.h"
#include "source/pg/pgjson.h"

static const struct json_ctx jctx = {"p", "postgresql", "db", "0", pgjson_source};
static char dir[] = "/tmp/cdc-file-sink-XXXXXX";
static char path[256];

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
}

static struct file_sink_cfg fcfg = {.path = path, .fsync = true};

static void sink_init(struct sink *sk, struct sink_cfg *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->sink_id = "jsonl";
    sc->type = &sink_file_type;
    sc->conf = &fcfg;
    memset(sk, 0, sizeof *sk);
    sk->ops = sc->type->ops;
    sk->cfg = sc;
    sk->json = &jctx;
}

static off_t file_size(void)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void append(const char *s)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
    close(fd);
}

static void test_second_writer_refused_tail_untouched(void **state)
{
    (void)state;
    struct sink_cfg ca, cb;
    struct sink a, b;
    sink_init(&a, &ca);
    sink_init(&b, &cb);
    assert_true(ca.type->single_writer);
    struct cdc_pos have;
    assert_int_equal(a.ops->open(&a, &have), 0);
    /* the first writer is halfway through a line */
    append("{\"before\":null,\"after\":{\"id\":1");
    off_t size = file_size();
    assert_int_not_equal(b.ops->open(&b, &have), 0);
    assert_non_null(strstr(b.err, "another process"));
    assert_int_equal(file_size(), size); /* not cut as a torn line */
    /* a replay opener is refused the same way */
    b.replay = true;
    assert_int_not_equal(b.ops->open(&b, &have), 0);
    b.replay = false;
    assert_true(a.ops->ready(&a)); /* /tmp has room */
    a.ops->close(&a);

    /* the writer died mid-line: the next opener cuts the torn line */
    assert_int_equal(b.ops->open(&b, &have), 0);
    assert_int_equal(file_size(), 0);
    b.ops->close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_writer_refused_tail_untouched),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* pgoutput parser tests on real frames captured from PostgreSQL 15
 * (tests/unit/data/pgoutput/capture.sh), plus truncation and garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "source/pg/pgoutput.h"
#include "util/err.h"

#define FRAMES_FILE "tests/unit/data/pgoutput/frames.txt"

struct frame {
    char scenario[32];
    uint8_t *data;
    size_t len;
};

static struct frame *frames;
static size_t nframes;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int load_frames(void **state)
{
    (void)state;
    FILE *f = fopen(FRAMES_FILE, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s (run tests from the repository root)\n", FRAMES_FILE);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t capf = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        if (nframes == capf) {
            capf = capf ? 2 * capf : 256;
            frames = realloc(frames, capf * sizeof *frames);
        }
        struct frame *fr = &frames[nframes++];
        snprintf(fr->scenario, sizeof fr->scenario, "%.*s", (int)(sp - line), line);
        const char *hex = sp + 1;
        size_t hl = strcspn(hex, "\r\n");
        fr->len = hl / 2;
        fr->data = malloc(fr->len ? fr->len : 1);
        for (size_t i = 0; i < fr->len; i++)
            fr->data[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    }
    free(line);
    fclose(f);
    return nframes ? 0 : -1;
}

static int free_frames(void **state)
{
    (void)state;
    for (size_t i = 0; i < nframes; i++)
        free(frames[i].data);
    free(frames);
    return 0;
}

/* The k-th frame (0-based) of a scenario. */
static const struct frame *frame_of(const char *scenario, size_t k)
{
    for (size_t i = 0; i < nframes; i++)
        if (strcmp(frames[i].scenario, scenario) == 0 && k-- == 0)
            return &frames[i];
    fail_msg("scenario %s has too few frames", scenario);
    return NULL;
}

static size_t count_of(const char *scenario)
{
    size_t n = 0;
    for (size_t i = 0; i < nframes; i++)
        n += strcmp(frames[i].scenario, scenario) == 0;
    return n;
}

/* Parses a scenario, tracking stream blocks like the source does. */
static void parse_all(const char *scenario, struct pgo_msg *out, size_t max, size_t *n)
{
    bool streaming = false;
    *n = 0;
    for (size_t i = 0; i < count_of(scenario) && *n < max; i++) {
        const struct frame *fr = frame_of(scenario, i);
        char err[256];
        int rc = pgo_parse(fr->data, fr->len, streaming, &out[*n], err, sizeof err);
        if (rc != 0)
            fail_msg("%s frame %zu: %s", scenario, i, err);
        if (out[*n].type == PGO_STREAM_START)
            streaming = true;
        else if (out[*n].type == PGO_STREAM_STOP)
            streaming = false;
        (*n)++;
    }
}

static void expect_col(const uint8_t **cur, char kind, const char *text)
{
    struct pgo_col c;
    pgo_tuple_next(cur, &c);
    assert_int_equal(c.kind, kind);
    if (text) {
        assert_int_equal(c.len, strlen(text));
        assert_memory_equal(c.data, text, c.len);
    }
}

static void test_insert(void **state)
{
    (void)state;
    struct pgo_msg m[8];
    size_t n;
    parse_all("insert", m, 8, &n);
    assert_int_equal(n, 6);
    assert_int_equal(m[0].type, PGO_BEGIN);
    assert_true(m[0].begin.final_lsn > 0);
    assert_true(m[0].begin.xid > 0);
    assert_int_equal(m[1].type, PGO_TYPE);
    assert_string_equal(m[1].typeinfo.nspname, "public");
    assert_string_equal(m[1].typeinfo.typname, "mood");
    assert_int_equal(m[2].type, PGO_RELATION);
    assert_string_equal(m[2].relation.nspname, "public");
    assert_string_equal(m[2].relation.relname, "t1");
    assert_int_equal(m[2].relation.replident, 'd');
    assert_int_equal(m[2].relation.ncols, 5);
    static const char *names[] = {"id", "name", "price", "data", "m"};
    static const uint32_t oids[] = {23, 25, 1700, 17, 0};
    const uint8_t *cur = m[2].relation.cols;
    for (int i = 0; i < 5; i++) {
        struct pgo_relcol rc;
        pgo_relcol_next(&cur, &rc);
        assert_string_equal(rc.name, names[i]);
        if (oids[i])
            assert_int_equal(rc.type_oid, oids[i]);
        else
            assert_int_equal(rc.type_oid, m[1].typeinfo.oid);
        assert_int_equal(rc.flags, i == 0 ? 1 : 0);
        if (i == 2) /* numeric(10,2): ((10 << 16) | 2) + 4 */
            assert_int_equal(rc.typmod, (10 << 16 | 2) + 4);
    }
    assert_int_equal(m[3].type, PGO_INSERT);
    assert_int_equal(m[3].change.relid, m[2].relation.relid);
    assert_int_equal(m[3].change.new.ncols, 5);
    cur = m[3].change.new.p;
    expect_col(&cur, 't', "1");
    expect_col(&cur, 't', "caf\xc3\xa9 \xe2\x98\x95");
    expect_col(&cur, 't', "12.50");
    expect_col(&cur, 't', "\\xdeadbeef");
    expect_col(&cur, 't', "happy");
    cur = m[4].change.new.p;
    expect_col(&cur, 't', "2");
    for (int i = 0; i < 4; i++)
        expect_col(&cur, 'n', NULL);
    assert_int_equal(m[5].type, PGO_COMMIT);
    assert_int_equal(m[5].commit.commit_lsn, m[0].begin.final_lsn);
    assert_true(m[5].commit.end_lsn > m[5].commit.commit_lsn);
    assert_int_equal(m[5].commit.commit_ts, m[0].begin.commit_ts);
}

static void test_update_delete(void **state)
{
    (void)state;
    struct pgo_msg m[16];
    size_t n;
    parse_all("update_delete", m, 16, &n);
    /* UPDATE name: no old tuple (key unchanged, identity default). */
    size_t i = 0;
    while (m[i].type != PGO_UPDATE)
        i++;
    assert_int_equal(m[i].change.old_kind, 0);
    const uint8_t *cur = m[i].change.new.p;
    expect_col(&cur, 't', "1");
    expect_col(&cur, 't', "renamed");
    /* UPDATE id 2 -> 3: old key tuple 'K' carries only the key. */
    for (i++; m[i].type != PGO_UPDATE; i++)
        ;
    assert_int_equal(m[i].change.old_kind, 'K');
    cur = m[i].change.old.p;
    expect_col(&cur, 't', "2");
    expect_col(&cur, 'n', NULL);
    cur = m[i].change.new.p;
    expect_col(&cur, 't', "3");
    /* DELETE id 3 */
    for (i++; m[i].type != PGO_DELETE; i++)
        ;
    assert_int_equal(m[i].change.old_kind, 'K');
    cur = m[i].change.old.p;
    expect_col(&cur, 't', "3");
}

static void test_full_identity(void **state)
{
    (void)state;
    struct pgo_msg m[32];
    size_t n;
    parse_all("full_identity", m, 32, &n);
    const struct pgo_msg *rel = NULL;
    size_t updates = 0, deletes = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].type == PGO_RELATION && strcmp(m[i].relation.relname, "t3") == 0) {
            rel = &m[i];
            assert_int_equal(rel->relation.replident, 'f');
            const uint8_t *cur = rel->relation.cols;
            for (int c = 0; c < 2; c++) {
                struct pgo_relcol rc;
                pgo_relcol_next(&cur, &rc);
                assert_int_equal(rc.flags, 1); /* every column is identity */
            }
        }
        if (m[i].type == PGO_UPDATE) {
            updates++;
            assert_int_equal(m[i].change.old_kind, 'O');
            const uint8_t *cur = m[i].change.old.p;
            expect_col(&cur, 't', "7");
            expect_col(&cur, 't', "full");
            cur = m[i].change.new.p;
            expect_col(&cur, 't', "7");
            expect_col(&cur, 't', "fuller");
        }
        if (m[i].type == PGO_DELETE) {
            deletes++;
            assert_int_equal(m[i].change.old_kind, 'O');
        }
    }
    assert_non_null(rel);
    assert_int_equal(updates, 2);
    assert_int_equal(deletes, 2);
}

static void test_toast_unchanged(void **state)
{
    (void)state;
    struct pgo_msg m[16];
    size_t n;
    parse_all("toast", m, 16, &n);
    size_t i = 0;
    while (m[i].type != PGO_INSERT)
        i++;
    const uint8_t *cur = m[i].change.new.p;
    struct pgo_col c;
    pgo_tuple_next(&cur, &c);
    pgo_tuple_next(&cur, &c);
    assert_int_equal(c.kind, 't');
    assert_int_equal(c.len, 200 * 32);
    while (m[i].type != PGO_UPDATE)
        i++;
    cur = m[i].change.new.p;
    expect_col(&cur, 't', "1");
    expect_col(&cur, 'u', NULL); /* the big value was not carried */
    expect_col(&cur, 't', "1");
}

static void test_truncate_and_messages(void **state)
{
    (void)state;
    struct pgo_msg m[16];
    size_t n;
    parse_all("truncate_message", m, 16, &n);
    bool saw_trunc = false, saw_msg = false, saw_nontx = false;
    for (size_t i = 0; i < n; i++) {
        if (m[i].type == PGO_TRUNCATE) {
            saw_trunc = true;
            assert_int_equal(m[i].truncate.nrels, 2);
            assert_int_equal(m[i].truncate.options, 2); /* RESTART IDENTITY */
            assert_true(pgo_truncate_relid(&m[i], 0) != pgo_truncate_relid(&m[i], 1));
        }
        if (m[i].type == PGO_MESSAGE && m[i].message.flags == 0) {
            /* Non-transactional: arrives on its own, outside any Begin. */
            saw_nontx = true;
            assert_int_equal(m[i - 1].type, PGO_COMMIT);
            assert_int_equal(m[i].message.len, 2);
            assert_memory_equal(m[i].message.content, "\x00\xff", 2);
        } else if (m[i].type == PGO_MESSAGE) {
            saw_msg = true;
            assert_int_equal(m[i].message.flags, 1);
            assert_string_equal(m[i].message.prefix, "app");
            assert_int_equal(m[i].message.len, 6);
            assert_memory_equal(m[i].message.content, "in txn", 6);
        }
    }
    assert_true(saw_trunc && saw_msg && saw_nontx);
}

static void test_stream_commit(void **state)
{
    (void)state;
    size_t cnt = count_of("stream_commit");
    struct pgo_msg *m = calloc(cnt, sizeof *m);
    size_t n;
    parse_all("stream_commit", m, cnt, &n);
    uint32_t xid = 0;
    size_t inserts = 0, starts = 0, stops = 0;
    for (size_t i = 0; i < n; i++) {
        switch (m[i].type) {
        case PGO_STREAM_START:
            if (!xid) {
                xid = m[i].xid;
                assert_int_equal(m[i].stream_start.first_segment, 1);
            } else {
                assert_int_equal(m[i].xid, xid);
                assert_int_equal(m[i].stream_start.first_segment, 0);
            }
            starts++;
            break;
        case PGO_STREAM_STOP:
            stops++;
            break;
        case PGO_INSERT:
            assert_int_equal(m[i].xid, xid); /* streamed changes carry the xid */
            inserts++;
            break;
        case PGO_STREAM_COMMIT:
            assert_int_equal(m[i].xid, xid);
            assert_true(m[i].commit.end_lsn > m[i].commit.commit_lsn);
            break;
        default:
            break;
        }
    }
    assert_true(starts >= 2);
    assert_int_equal(starts, stops);
    assert_int_equal(inserts, 1500);
    assert_int_equal(m[n - 1].type, PGO_STREAM_COMMIT);
    free(m);
}

static void test_stream_subxact_abort(void **state)
{
    (void)state;
    size_t cnt = count_of("stream_abort");
    struct pgo_msg *m = calloc(cnt, sizeof *m);
    size_t n;
    parse_all("stream_abort", m, cnt, &n);
    /* The transaction rolls back a savepoint, then commits. */
    uint32_t top = 0;
    bool aborted_sub = false;
    for (size_t i = 0; i < n; i++) {
        if (m[i].type == PGO_STREAM_START && !top)
            top = m[i].xid;
        if (m[i].type == PGO_STREAM_ABORT) {
            assert_int_equal(m[i].xid, top);
            assert_true(m[i].stream_abort.subxid != top);
            aborted_sub = true;
        }
    }
    assert_true(aborted_sub);
    assert_int_equal(m[n - 1].type, PGO_STREAM_COMMIT);
    assert_int_equal(m[n - 1].xid, top);
    free(m);

    /* A whole transaction rolled back after being streamed: subxid == xid.
     * (Built by hand: capturing it needs decoding while it is still open.) */
    const uint8_t whole[9] = {'A', 0, 0, 0x02, 0x9a, 0, 0, 0x02, 0x9a};
    struct pgo_msg a;
    assert_int_equal(pgo_parse(whole, sizeof whole, false, &a, NULL, 0), 0);
    assert_int_equal(a.type, PGO_STREAM_ABORT);
    assert_int_equal(a.xid, 666);
    assert_int_equal(a.stream_abort.subxid, 666);
}

/* Every proper prefix of every real frame is rejected, and nothing crashes. */
static void test_truncated_frames(void **state)
{
    (void)state;
    bool streaming = false;
    for (size_t i = 0; i < nframes; i++) {
        const struct frame *fr = &frames[i];
        struct pgo_msg m;
        char err[256];
        /* Long streamed runs repeat the same shapes: sample them. */
        if (fr->len > 1 && (fr->data[0] != 'I' || i % 97 == 0)) {
            for (size_t cut = 0; cut < fr->len; cut++) {
                int rc = pgo_parse(fr->data, cut, streaming, &m, err, sizeof err);
                if (fr->data[0] == 'A' && cut >= 9)
                    continue; /* trailing fields of newer protocols are optional */
                if (rc != CDC_EINVAL)
                    fail_msg("frame %zu (%c) cut at %zu/%zu was accepted", i, fr->data[0], cut,
                             fr->len);
            }
        }
        assert_int_equal(pgo_parse(fr->data, fr->len, streaming, &m, err, sizeof err), 0);
        if (m.type == PGO_STREAM_START)
            streaming = true;
        else if (m.type == PGO_STREAM_STOP)
            streaming = false;
    }
}

/* Random bytes and bit flips of real frames never crash the parser, and a
 * parsed tuple can always be walked. */
static void test_garbage(void **state)
{
    (void)state;
    uint64_t s = 88172645463325252ULL;
    uint8_t buf[512];
    for (int iter = 0; iter < 200000; iter++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        size_t len;
        if (iter % 2) {
            const struct frame *fr = &frames[s % nframes];
            len = fr->len < sizeof buf ? fr->len : sizeof buf;
            memcpy(buf, fr->data, len);
            if (len)
                buf[(s >> 20) % len] ^= (uint8_t)(1u << ((s >> 40) % 8));
        } else {
            len = (s >> 8) % 64;
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)(s >> (i % 56));
            if (len)
                buf[0] = "BCORYIUDTMSEcA"[(s >> 3) % 14];
        }
        struct pgo_msg m;
        if (pgo_parse(buf, len, (s >> 5) & 1, &m, NULL, 0) != 0)
            continue;
        if (m.type == PGO_INSERT || m.type == PGO_UPDATE || m.type == PGO_DELETE) {
            const uint8_t *cur = m.change.new.p;
            for (uint16_t c = 0; m.type != PGO_DELETE && c < m.change.new.ncols; c++) {
                struct pgo_col col;
                pgo_tuple_next(&cur, &col);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert),
        cmocka_unit_test(test_update_delete),
        cmocka_unit_test(test_full_identity),
        cmocka_unit_test(test_toast_unchanged),
        cmocka_unit_test(test_truncate_and_messages),
        cmocka_unit_test(test_stream_commit),
        cmocka_unit_test(test_stream_subxact_abort),
        cmocka_unit_test(test_truncated_frames),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, load_frames, free_frames);
}

/* The PostgreSQL sink's checkpoint statements: one row per (pipeline, sink,
 * stream), upserted on that key; a table from before streams is migrated
 * to it; positions travel as bigints with -1 for a whole transaction.  The
 * statements run against a real server in tests/integration/test_crash.py
 * (test_checkpoint_table_from_before_streams). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sink/postgres/pg_sink.h"

static void assert_contains(char *sql, const char *part)
{
    if (!strstr(sql, part))
        fail_msg("%s\n  does not contain: %s", sql, part);
    free(sql);
}

static void test_statements(void **state)
{
    (void)state;
    const char *q = "\"s\".\"ck\"";
    assert_contains(pgs_ckpt_sql(PGS_CKPT_CREATE, "\"s\"", q),
                    "PRIMARY KEY (pipeline_id, sink_id, stream)");
    assert_contains(pgs_ckpt_sql(PGS_CKPT_CREATE, "\"s\"", q), "CREATE SCHEMA IF NOT EXISTS \"s\"");
    assert_contains(pgs_ckpt_sql(PGS_CKPT_SAVE, NULL, q),
                    "INSERT INTO \"s\".\"ck\" (pipeline_id, sink_id, stream, commit_lsn, "
                    "event_index) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (pipeline_id, sink_id, "
                    "stream) DO UPDATE");
    assert_contains(pgs_ckpt_sql(PGS_CKPT_READ, NULL, q),
                    "SELECT stream, commit_lsn, event_index FROM \"s\".\"ck\" WHERE pipeline_id "
                    "= $1 AND sink_id = $2");
    assert_contains(pgs_ckpt_sql(PGS_CKPT_INIT, NULL, q), "VALUES ($1, $2, 0, 0, 0)");
    /* the migration: the column (old rows are stream 0's), then the key */
    assert_contains(pgs_ckpt_sql(PGS_CKPT_ADD_STREAM, NULL, q),
                    "ALTER TABLE \"s\".\"ck\" ADD COLUMN stream bigint NOT NULL DEFAULT 0");
    assert_contains(pgs_ckpt_sql(PGS_CKPT_REKEY, NULL, q),
                    "ADD PRIMARY KEY (pipeline_id, sink_id, stream)");
    assert_contains(pgs_ckpt_sql(PGS_CKPT_LOCK, NULL, q), "IN ACCESS EXCLUSIVE MODE");
}

static void test_params(void **state)
{
    (void)state;
    char stream[24], lsn[24], idx[24];
    pgs_ckpt_params((struct cdc_pos){0x16B3748, CDC_POS_TXN_END, 7}, stream, lsn, idx);
    assert_string_equal(stream, "7");
    assert_string_equal(lsn, "23803720");
    assert_string_equal(idx, "-1");
    /* the bits of a position past 2^63 survive the signed bigint */
    pgs_ckpt_params((struct cdc_pos){UINT64_MAX - 1, 3, 0}, stream, lsn, idx);
    assert_string_equal(lsn, "-2");
    assert_string_equal(idx, "3");
    assert_string_equal(stream, "0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statements),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

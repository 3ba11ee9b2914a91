/* Reading small JSON documents we are handed (snapshot signals, the status
 * document `cdc health` fetches): parsed whole into a tree.  Strict: anything
 * that is not valid JSON is rejected, never guessed at. */
#ifndef CDC_CORE_JSONREAD_H
#define CDC_CORE_JSONREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jsonv_type { JSONV_NULL, JSONV_BOOL, JSONV_NUM, JSONV_STR, JSONV_ARR, JSONV_OBJ };

struct jsonv {
    enum jsonv_type t;
    bool b;              /* JSONV_BOOL */
    double num;          /* JSONV_NUM */
    char *s;             /* JSONV_STR: unescaped UTF-8; JSONV_NUM: the number as written; owned */
    struct jsonv *items; /* JSONV_ARR, JSONV_OBJ: n entries, owned */
    char **keys;         /* JSONV_OBJ: n entries, owned */
    size_t n;
};

/* Parses json[0..len) into *v (nesting up to 128 levels).  0, or CDC_EINVAL
 * with *v empty.  Free with jsonv_free. */
int jsonread_parse(const char *json, size_t len, struct jsonv *v);
void jsonv_free(struct jsonv *v);
/* The value of key in object o (the first, if repeated), or NULL when o is
 * NULL, not an object or has no such key. */
const struct jsonv *jsonv_get(const struct jsonv *o, const char *key);
/* o's key as a string or a number, or dflt when it is absent or of another
 * type. */
const char *jsonv_str(const struct jsonv *o, const char *key, const char *dflt);
double jsonv_num(const struct jsonv *o, const char *key, double dflt);
/* Whether v is a number with an integer value in [lo, hi] (|lo|, |hi| at
 * most 2^53); if so *out = it.  Never converts a number out of range. */
bool jsonv_int(const struct jsonv *v, int64_t lo, int64_t hi, int64_t *out);

/* Finds key in the top-level object of json[0..len) and returns its value if
 * it is an array of strings: *out = heap array of heap strings, *n = count.
 * Returns 0 (with *n = 0 and *out = NULL when the key is absent), or
 * CDC_EINVAL if the document is not an object or the value is not an array
 * of strings.  Free with jsonread_free_strings. */
int jsonread_string_array(const char *json, size_t len, const char *key, char ***out, size_t *n);
/* Like jsonread_string_array for a string value: *out = heap string or NULL. */
int jsonread_string(const char *json, size_t len, const char *key, char **out);
void jsonread_free_strings(char **v, size_t n);

#endif

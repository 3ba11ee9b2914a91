/* Reading small JSON documents we are handed (snapshot signals): just enough
 * to pull named values out of a top-level object.  Strict: anything that is
 * not valid JSON is rejected, never guessed at. */
#ifndef CDC_CORE_JSONREAD_H
#define CDC_CORE_JSONREAD_H

#include <stddef.h>

/* Finds key in the top-level object of json[0..len) and returns its value if
 * it is an array of strings: *out = heap array of heap strings (unescaped,
 * UTF-8), *n = count.  Returns 0 (with *n = 0 and *out = NULL when the key is
 * absent), or CDC_EINVAL if the document is not an object or the value is not
 * an array of strings.  Free with jsonread_free_strings. */
int jsonread_string_array(const char *json, size_t len, const char *key, char ***out, size_t *n);
/* Like jsonread_string_array for a string value: *out = heap string or NULL. */
int jsonread_string(const char *json, size_t len, const char *key, char **out);
void jsonread_free_strings(char **v, size_t n);

#endif

/* Row builders for the configuration schema tables (cfg_schema.h): one
 * macro per key type, the key's name being the struct field's name. */
#ifndef CDC_CONFIG_CFG_KEYS_H
#define CDC_CONFIG_CFG_KEYS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg_schema.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CHOICES(a)   .names = (a), .nnames = ARRAY_LEN(a)
#define KEYS(a)      .keys = (a), .nkeys = ARRAY_LEN(a)

/* Row builders: key name = field name. */
#define K_STR(T, f, def, ...)                                                                      \
    {                                                                                              \
        .name = #f, .type = CFG_STRING, .off = offsetof(T, f), .def_str = (def), ##__VA_ARGS__     \
    }
#define K_INT(T, f, def, lo, hi, ...)                                                              \
    {                                                                                              \
        .name = #f, .type = CFG_INT, .off = offsetof(T, f), .def_int = (def), .imin = (lo),        \
        .imax = (hi), ##__VA_ARGS__                                                                \
    }
#define K_I64(T, f, def, lo, hi, ...)                                                              \
    {                                                                                              \
        .name = #f, .type = CFG_INT64, .off = offsetof(T, f), .def_int = (def), .imin = (lo),      \
        .imax = (hi), ##__VA_ARGS__                                                                \
    }
#define K_FLT(T, f, def, lo, ...)                                                                  \
    {                                                                                              \
        .name = #f, .type = CFG_FLOAT, .off = offsetof(T, f), .def_float = (def), .fmin = (lo),    \
        .fmax = INFINITY, ##__VA_ARGS__                                                            \
    }
#define K_BOOL(T, f, def, ...)                                                                     \
    {                                                                                              \
        .name = #f, .type = CFG_BOOL, .off = offsetof(T, f), .def_int = (def), ##__VA_ARGS__       \
    }
#define K_ENUM(T, f, def, nm, ...)                                                                 \
    {                                                                                              \
        .name = #f, .type = CFG_ENUM, .off = offsetof(T, f), .def_int = (def), CHOICES(nm),        \
        ##__VA_ARGS__                                                                              \
    }
#define K_OBJ(T, f, sc)                                                                            \
    {                                                                                              \
        .name = #f, .type = CFG_OBJECT, .off = offsetof(T, f), .sub = &(sc)                        \
    }
#define K_OBJLIST(T, f, cnt, sc, ...)                                                              \
    {                                                                                              \
        .name = #f, .type = CFG_OBJLIST, .off = offsetof(T, f), .count_off = offsetof(T, cnt),     \
        .sub = &(sc), ##__VA_ARGS__                                                                \
    }
#define K_STRMAP(T, f, cnt)                                                                        \
    {                                                                                              \
        .name = #f, .type = CFG_STRMAP, .off = offsetof(T, f), .count_off = offsetof(T, cnt)       \
    }
#define K_FOREIGN(nm)                                                                              \
    {                                                                                              \
        .name = (nm), .type = CFG_FOREIGN                                                          \
    }

/* A key of the reference that cdc does not implement: what it configures. */
#define K_NOTIMPL(nm, what)                                                                        \
    {                                                                                              \
        .name = (nm), .type = CFG_NOTIMPL, .item_desc = (what)                                     \
    }

#define PORT_MAX 65535

#endif

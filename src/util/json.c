/*
 * json.c - a strict RFC 8259 parser (see json.h).
 *
 * Recursive descent, bounded by FN_JSON_MAX_DEPTH so the C stack is bounded
 * too. While a container is being parsed its members are pushed on one
 * growable scratch stack; when it closes they are copied into the arena at
 * their final size, so arena memory is never reallocated and the whole tree
 * is freed by walking one block list. Every byte the parser allocates (arena,
 * scratch stack, duplicate-key index) counts against a budget: hostile input
 * cannot turn a few MiB of "[0,0,0,..." into gigabytes of nodes.
 *
 * Numbers are read with strtod under the "C" locale (uselocale, per thread)
 * so a host program that called setlocale() cannot make "0.5" unreadable.
 */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

#define ARENA_ALIGN (_Alignof(fn_json) > _Alignof(char *) ? _Alignof(fn_json) : _Alignof(char *))
#define ARENA_MIN_BLOCK 4096
#define ARENA_MAX_BLOCK (1u << 20)

typedef struct block {
    struct block *next;
    size_t cap, used;
    max_align_t data[]; /* first byte suitably aligned for anything */
} block;

/* What fn_json_parse() returns a pointer into: root is the document's value. */
typedef struct doc {
    block *blocks;
    fn_json root;
} doc;

/* One member of an open container on the scratch stack. */
typedef struct slot {
    fn_json v;
    char *key;          /* objects only */
    size_t kline, kcol; /* where the key starts, for duplicate-key errors */
} slot;

typedef struct parser {
    const char *p, *end;
    size_t line;
    const char *line_start;
    doc *d;
    size_t next_block; /* size of the next arena block */
    size_t used, budget;
    slot *stack;
    size_t sp, scap;
    locale_t cloc; /* (locale_t)0 until a number with a fraction needs it */
    fn_error *e;
} parser;

/* ------------------------------------------------------------------ errors */

static int fail_at(parser *ps, const char *at, facenet_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int fail_at(parser *ps, const char *at, facenet_status st, const char *fmt, ...) {
    char msg[FN_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Lines only advance in whitespace, so a position inside the current
     * token is on ps->line; one further back (a container's opening
     * bracket) is replaced by the current position. */
    if (at < ps->line_start || at > ps->end) at = ps->p;
    size_t col = (size_t)(at - ps->line_start) + 1;
    fn_fail(ps->e, st, "line %zu, column %zu: %s", ps->line, col, msg);
    return -1;
}

/* A readable name for the byte at p (or the end of input). */
static const char *describe(const parser *ps, const char *p, char buf[16]) {
    if (p >= ps->end) return "end of input";
    unsigned char c = (unsigned char)*p;
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

static int fail_unexpected(parser *ps, const char *p, const char *wanted) {
    char buf[16];
    const char *what = describe(ps, p, buf);
    if (p >= ps->end)
        return fail_at(ps, p, FACENET_ERR_FORMAT, "unexpected end of input, expected %s", wanted);
    return fail_at(ps, p, FACENET_ERR_FORMAT, "unexpected %s, expected %s", what, wanted);
}

/* ------------------------------------------------------------------ memory */

/* Count n more bytes against the budget; 0 if that would exceed it. */
static int charge(parser *ps, size_t n, const char *at) {
    if (n > ps->budget - ps->used) {
        fail_at(ps, at, FACENET_ERR_TOO_LARGE, "the document needs more than %zu bytes of memory",
                ps->budget);
        return 0;
    }
    ps->used += n;
    return 1;
}

static void *arena_alloc(parser *ps, size_t n, const char *at) {
    size_t need = (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (need < n) {
        fail_at(ps, at, FACENET_ERR_TOO_LARGE, "allocation size overflows");
        return NULL;
    }
    block *b = ps->d->blocks;
    if (!b || b->cap - b->used < need) {
        size_t cap = ps->next_block > need ? ps->next_block : need, total;
        if (!fn_add_size(sizeof(block), cap, &total)) {
            fail_at(ps, at, FACENET_ERR_TOO_LARGE, "allocation size overflows");
            return NULL;
        }
        if (!charge(ps, total, at)) return NULL;
        b = malloc(total);
        if (!b) {
            fail_at(ps, at, FACENET_ERR_NO_MEMORY, "out of memory");
            return NULL;
        }
        b->cap = cap;
        b->used = 0;
        b->next = ps->d->blocks;
        ps->d->blocks = b;
        if (ps->next_block < ARENA_MAX_BLOCK) ps->next_block *= 2;
    }
    void *r = (unsigned char *)b->data + b->used;
    b->used += need;
    return r;
}

static int push(parser *ps, const slot *s, const char *at) {
    if (ps->sp == ps->scap) {
        size_t ncap = ps->scap ? ps->scap * 2 : 64, bytes;
        if (!fn_mul_size(ncap, sizeof(slot), &bytes)) {
            fail_at(ps, at, FACENET_ERR_TOO_LARGE, "too many values");
            return -1;
        }
        if (!charge(ps, bytes - ps->scap * sizeof(slot), at)) return -1;
        slot *ns = realloc(ps->stack, bytes);
        if (!ns) {
            fail_at(ps, at, FACENET_ERR_NO_MEMORY, "out of memory");
            return -1;
        }
        ps->stack = ns;
        ps->scap = ncap;
    }
    ps->stack[ps->sp++] = *s;
    return 0;
}

/* ------------------------------------------------------------------ lexing */

static void skip_ws(parser *ps) {
    const char *p = ps->p;
    while (p < ps->end) {
        char c = *p;
        if (c == '\n') {
            ps->line++;
            ps->line_start = p + 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            break;
        }
        p++;
    }
    ps->p = p;
}

/* Length of the valid UTF-8 sequence (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF) starting at s, or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return len;
}

int fn_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_len(u + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ps->p is at the opening quote. Decodes into the arena. */
static int parse_string(parser *ps, char **out, size_t *out_len) {
    const char *open = ps->p, *p = open + 1;
    /* First find the closing quote, so the output can be sized: decoding
     * never makes a string longer than its escaped form. */
    while (p < ps->end && *p != '"') p += *p == '\\' && ps->end - p > 1 ? 2 : 1;
    if (p >= ps->end) return fail_at(ps, open, FACENET_ERR_FORMAT, "unterminated string");
    const char *close = p;
    char *o = arena_alloc(ps, (size_t)(close - open), open);
    if (!o) return -1;
    char *start = o;
    for (p = open + 1; p < close;) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return fail_at(ps, p, FACENET_ERR_FORMAT, "control character 0x%02x in string (escape it)", c);
        if (c >= 0x80) {
            size_t k = utf8_len((const unsigned char *)p, (size_t)(close - p));
            if (!k) return fail_at(ps, p, FACENET_ERR_FORMAT, "invalid UTF-8 in string");
            memcpy(o, p, k);
            o += k;
            p += k;
            continue;
        }
        if (c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        const char *esc = p;
        switch (p[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (close - p < 6 || !hex4(p + 2, &cp))
                return fail_at(ps, esc, FACENET_ERR_FORMAT, "\\u must be followed by 4 hex digits");
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail_at(ps, esc, FACENET_ERR_FORMAT, "unpaired low surrogate \\u%04x", cp);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (close - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &lo) || lo < 0xdc00 ||
                    lo > 0xdfff)
                    return fail_at(ps, esc, FACENET_ERR_FORMAT, "unpaired high surrogate \\u%04x", cp);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            o += put_utf8(o, cp);
            p += 6;
            continue;
        }
        default: {
            char buf[16];
            return fail_at(ps, esc, FACENET_ERR_FORMAT, "invalid escape: backslash followed by %s",
                           describe(ps, p + 1, buf));
        }
        }
        p += 2;
    }
    *o = '\0';
    *out = start;
    *out_len = (size_t)(o - start);
    ps->p = close + 1;
    return 0;
}

static int is_digit(const parser *ps, const char *p) { return p < ps->end && *p >= '0' && *p <= '9'; }

static int parse_number(parser *ps, fn_json *v) {
    const char *start = ps->p, *p = start;
    int has_dot = 0;
    if (*p == '-') p++;
    if (!is_digit(ps, p)) return fail_unexpected(ps, p, "a digit");
    if (*p == '0') {
        p++;
        if (is_digit(ps, p))
            return fail_at(ps, start, FACENET_ERR_FORMAT, "numbers may not have leading zeros");
    } else {
        while (is_digit(ps, p)) p++;
    }
    if (p < ps->end && *p == '.') {
        has_dot = 1;
        p++;
        if (!is_digit(ps, p)) return fail_unexpected(ps, p, "a digit after the decimal point");
        while (is_digit(ps, p)) p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < ps->end && (*p == '+' || *p == '-')) p++;
        if (!is_digit(ps, p)) return fail_unexpected(ps, p, "a digit in the exponent");
        while (is_digit(ps, p)) p++;
    }
    size_t n = (size_t)(p - start);
    char *txt = arena_alloc(ps, n + 1, start);
    if (!txt) return -1;
    memcpy(txt, start, n);
    txt[n] = '\0';
    if (has_dot) {
        /* Only the decimal point depends on the locale. */
        if (ps->cloc == (locale_t)0) {
            ps->cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
            if (ps->cloc == (locale_t)0) return fail_at(ps, start, FACENET_ERR_NO_MEMORY, "out of memory");
        }
        locale_t old = uselocale(ps->cloc);
        v->number = strtod(txt, NULL);
        uselocale(old);
    } else {
        v->number = strtod(txt, NULL);
    }
    v->type = FN_JSON_NUMBER;
    v->num_text = txt;
    ps->p = p;
    return 0;
}

static int parse_literal(parser *ps, fn_json *v) {
    static const struct {
        const char *word;
        fn_json_type type;
        int boolean;
    } lits[] = {{"true", FN_JSON_BOOL, 1}, {"false", FN_JSON_BOOL, 0}, {"null", FN_JSON_NULL, 0}};
    for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
        size_t n = strlen(lits[i].word);
        if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, lits[i].word, n) == 0) {
            v->type = lits[i].type;
            v->boolean = lits[i].boolean;
            ps->p += n;
            return 0;
        }
    }
    return fail_at(ps, ps->p, FACENET_ERR_FORMAT, "invalid literal (expected true, false or null)");
}

/* ---------------------------------------------------------------- structure */

static int parse_value(parser *ps, fn_json *v, int depth);

/* Move the members above base from the scratch stack into the arena. */
static int close_container(parser *ps, fn_json *v, size_t base, int is_object, const char *at) {
    size_t n = ps->sp - base, bytes;
    v->count = n;
    if (n == 0) return 0;
    if (!fn_mul_size(n, sizeof(fn_json), &bytes))
        return fail_at(ps, at, FACENET_ERR_TOO_LARGE, "too many members");
    v->items = arena_alloc(ps, bytes, at);
    if (!v->items) return -1;
    for (size_t i = 0; i < n; i++) v->items[i] = ps->stack[base + i].v;
    if (is_object) {
        /* n * sizeof(char *) <= n * sizeof(fn_json): cannot overflow */
        v->keys = arena_alloc(ps, n * sizeof(char *), at);
        if (!v->keys) return -1;
        for (size_t i = 0; i < n; i++) v->keys[i] = ps->stack[base + i].key;
    }
    return 0;
}

typedef struct keyref {
    const char *key;
    size_t idx;
} keyref;

static int keyref_cmp(const void *a, const void *b) {
    const keyref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c) return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sets *dup to the stack index (> base) of the first key repeating an
 * earlier one, or 0 if none; -1 on failure. Small objects by pairwise
 * comparison, large ones by sorting, so a hostile object of 100k keys costs
 * n log n, not n^2. */
static int find_duplicate(parser *ps, size_t base, const char *at, size_t *dup) {
    size_t n = ps->sp - base;
    *dup = 0;
    if (n < 2) return 0;
    if (n <= 16) {
        for (size_t j = 1; j < n && !*dup; j++)
            for (size_t i = 0; i < j && !*dup; i++)
                if (strcmp(ps->stack[base + i].key, ps->stack[base + j].key) == 0) *dup = base + j;
        return 0;
    }
    size_t bytes;
    if (!fn_mul_size(n, sizeof(keyref), &bytes))
        return fail_at(ps, at, FACENET_ERR_TOO_LARGE, "too many keys");
    if (!charge(ps, bytes, at)) return -1;
    keyref *r = malloc(bytes);
    if (!r) return fail_at(ps, at, FACENET_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++) {
        r[i].key = ps->stack[base + i].key;
        r[i].idx = base + i;
    }
    qsort(r, n, sizeof *r, keyref_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(r[i - 1].key, r[i].key) == 0 && (!*dup || r[i].idx < *dup)) *dup = r[i].idx;
    free(r);
    ps->used -= bytes;
    return 0;
}

static int parse_array(parser *ps, fn_json *v, int depth) {
    const char *open = ps->p;
    size_t base = ps->sp;
    v->type = FN_JSON_ARRAY;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return 0;
    }
    for (;;) {
        slot s;
        memset(&s, 0, sizeof s);
        if (parse_value(ps, &s.v, depth) != 0) return -1;
        if (push(ps, &s, ps->p) != 0) return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ']')
                return fail_at(ps, ps->p, FACENET_ERR_FORMAT, "trailing comma before ']'");
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') break;
        return fail_unexpected(ps, ps->p, "',' or ']' after an array element");
    }
    ps->p++;
    int r = close_container(ps, v, base, 0, open);
    ps->sp = base;
    return r;
}

static int parse_object(parser *ps, fn_json *v, int depth) {
    const char *open = ps->p;
    size_t base = ps->sp;
    v->type = FN_JSON_OBJECT;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return 0;
    }
    for (;;) {
        slot s;
        memset(&s, 0, sizeof s);
        if (ps->p >= ps->end || *ps->p != '"') return fail_unexpected(ps, ps->p, "a string key");
        s.kline = ps->line;
        s.kcol = (size_t)(ps->p - ps->line_start) + 1;
        const char *kstart = ps->p;
        size_t klen;
        if (parse_string(ps, &s.key, &klen) != 0) return -1;
        /* Keys are looked up as C strings: an embedded NUL would let
         * "a\u0000b" pose as "a". */
        if (strlen(s.key) != klen)
            return fail_at(ps, kstart, FACENET_ERR_FORMAT, "object key contains \\u0000");
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') return fail_unexpected(ps, ps->p, "':' after the key");
        ps->p++;
        if (parse_value(ps, &s.v, depth) != 0) return -1;
        if (push(ps, &s, ps->p) != 0) return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == '}')
                return fail_at(ps, ps->p, FACENET_ERR_FORMAT, "trailing comma before '}'");
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') break;
        return fail_unexpected(ps, ps->p, "',' or '}' after an object member");
    }
    size_t dup;
    if (find_duplicate(ps, base, open, &dup) != 0) return -1;
    if (dup) {
        const slot *d = &ps->stack[dup];
        fn_fail(ps->e, FACENET_ERR_FORMAT, "line %zu, column %zu: duplicate object key \"%.200s\"", d->kline,
                d->kcol, d->key);
        return -1;
    }
    ps->p++;
    int r = close_container(ps, v, base, 1, open);
    ps->sp = base;
    return r;
}

static int parse_value(parser *ps, fn_json *v, int depth) {
    skip_ws(ps);
    memset(v, 0, sizeof *v);
    v->line = ps->line;
    if (ps->p >= ps->end) return fail_unexpected(ps, ps->p, "a value");
    switch (*ps->p) {
    case '{':
    case '[':
        if (depth >= FN_JSON_MAX_DEPTH)
            return fail_at(ps, ps->p, FACENET_ERR_TOO_LARGE, "nesting deeper than %d levels",
                           FN_JSON_MAX_DEPTH);
        return *ps->p == '{' ? parse_object(ps, v, depth + 1) : parse_array(ps, v, depth + 1);
    case '"': v->type = FN_JSON_STRING; return parse_string(ps, &v->str, &v->str_len);
    case 't':
    case 'f':
    case 'n': return parse_literal(ps, v);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps, v);
        if ((unsigned char)*ps->p == 0xef && ps->end - ps->p >= 3 && memcmp(ps->p, "\xef\xbb\xbf", 3) == 0)
            return fail_at(ps, ps->p, FACENET_ERR_FORMAT, "byte order mark (BOM) is not allowed");
        return fail_unexpected(ps, ps->p, "a value");
    }
}

static void free_doc(doc *d) {
    if (!d) return;
    block *b = d->blocks;
    while (b) {
        block *next = b->next;
        free(b);
        b = next;
    }
    free(d);
}

fn_json *fn_json_parse_limited(const char *text, size_t len, size_t max_memory, fn_error *e) {
    if (!text && len) {
        fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_json_parse: NULL text");
        return NULL;
    }
    parser ps;
    memset(&ps, 0, sizeof ps);
    ps.p = text ? text : "";
    ps.end = ps.p + len;
    ps.line = 1;
    ps.line_start = ps.p;
    ps.next_block = ARENA_MIN_BLOCK;
    ps.budget = max_memory;
    ps.cloc = (locale_t)0;
    ps.e = e;
    if (!charge(&ps, sizeof(doc), ps.p)) return NULL;
    ps.d = calloc(1, sizeof(doc));
    if (!ps.d) {
        fail_at(&ps, ps.p, FACENET_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    int r = parse_value(&ps, &ps.d->root, 0);
    if (r == 0) {
        skip_ws(&ps);
        if (ps.p < ps.end) {
            char buf[16];
            r = fail_at(&ps, ps.p, FACENET_ERR_FORMAT, "unexpected %s after the end of the document",
                        describe(&ps, ps.p, buf));
        }
    }
    free(ps.stack);
    if (ps.cloc != (locale_t)0) freelocale(ps.cloc);
    if (r != 0) {
        free_doc(ps.d);
        return NULL;
    }
    return &ps.d->root;
}

fn_json *fn_json_parse(const char *text, size_t len, fn_error *e) {
    return fn_json_parse_limited(text, len, FN_JSON_MAX_MEMORY, e);
}

void fn_json_free(fn_json *root) {
    if (!root) return;
    free_doc((doc *)(void *)((char *)root - offsetof(doc, root)));
}

const fn_json *fn_json_get(const fn_json *obj, const char *key) {
    if (!obj || obj->type != FN_JSON_OBJECT || !key) return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

int fn_json_int64(const fn_json *v, int64_t *out) {
    if (!v || v->type != FN_JSON_NUMBER || !v->num_text) return 0;
    const char *p = v->num_text;
    int neg = *p == '-';
    if (neg) p++;
    if (!*p) return 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, x = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return 0; /* a fraction or an exponent */
        unsigned d = (unsigned)(*p - '0');
        if (x > (limit - d) / 10) return 0;
        x = x * 10 + d;
    }
    if (neg)
        *out = x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x;
    else
        *out = (int64_t)x;
    return 1;
}

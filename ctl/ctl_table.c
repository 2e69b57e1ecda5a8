/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_table.c -- plain-text tables for fedgslbctl. */
#include "ctl/ctl_table.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "common/cm_str.h"

#define TABLE_GAP "  "

struct ctl_table {
    size_t ncols;
    size_t nrows;
    size_t cap_rows;
    char **cells;  /* owned: nrows * ncols owned strings */
    size_t *width; /* owned: ncols display widths */
};

struct ctl_table *ctl_table_new(size_t ncols)
{
    struct ctl_table *t;

    if (ncols == 0)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    t->width = calloc(ncols, sizeof(*t->width));
    if (t->width == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

void ctl_table_free(struct ctl_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->width);
    free(t);
}

size_t ctl_table_rows(const struct ctl_table *t)
{
    return t->nrows;
}

/* Display width of UTF-8 text: code points, not bytes (no wide characters here). */
static size_t text_width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    }
    return w;
}

static char *cell_dup(const char *s)
{
    char *c = strdup(s != NULL ? s : "-");

    for (char *p = c; p != NULL && *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    }
    return c;
}

int ctl_table_add_row(struct ctl_table *t, const char *const *cells)
{
    size_t base = t->nrows * t->ncols;

    if (t->nrows == t->cap_rows) {
        size_t cap = t->cap_rows > 0 ? t->cap_rows * 2 : 16;
        char **n = realloc(t->cells, cap * t->ncols * sizeof(*n));

        if (n == NULL)
            return CM_ENOMEM;
        t->cells = n;
        t->cap_rows = cap;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        t->cells[base + c] = cell_dup(cells[c]);
        if (t->cells[base + c] == NULL) {
            for (size_t k = 0; k < c; k++)
                free(t->cells[base + k]);
            return CM_ENOMEM;
        }
    }
    for (size_t c = 0; c < t->ncols; c++) {
        size_t w = text_width(t->cells[base + c]);

        if (w > t->width[c])
            t->width[c] = w;
    }
    t->nrows++;
    return CM_OK;
}

int ctl_table_render(const struct ctl_table *t, struct cm_buf *out)
{
    int rc = CM_OK;

    for (size_t r = 0; rc == CM_OK && r < t->nrows; r++) {
        size_t start = out->len;

        for (size_t c = 0; rc == CM_OK && c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            bool last = c + 1 == t->ncols;

            rc = cm_buf_append_str(out, cell);
            if (rc == CM_OK && !last) {
                size_t pad = t->width[c] - text_width(cell);

                for (size_t k = 0; rc == CM_OK && k < pad; k++)
                    rc = cm_buf_append(out, " ", 1);
                if (rc == CM_OK)
                    rc = cm_buf_append_str(out, TABLE_GAP);
            }
        }
        /* Empty last cells would leave the gap behind: no trailing blanks. */
        while (rc == CM_OK && out->len > start && out->data[out->len - 1] == ' ')
            out->data[--out->len] = '\0';
        if (rc == CM_OK)
            rc = cm_buf_append(out, "\n", 1);
    }
    return rc;
}

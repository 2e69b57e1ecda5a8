/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_table.h -- plain-text tables for fedgslbctl: left-aligned columns
 * separated by two spaces, each as wide as its widest cell, no trailing
 * blanks. The first row added is the header.
 */
#ifndef CTL_CTL_TABLE_H
#define CTL_CTL_TABLE_H

#include <stddef.h>

struct cm_buf;
struct ctl_table;

/** A table of @ncols columns (>= 1). NULL on allocation failure. */
struct ctl_table *ctl_table_new(size_t ncols);
/** Accepts NULL. */
void ctl_table_free(struct ctl_table *t);

/**
 * Appends a row of ncols cells (copied; a NULL cell prints as "-").
 * Newlines and tabs inside a cell are shown as spaces. CM_OK or CM_ENOMEM.
 */
int ctl_table_add_row(struct ctl_table *t, const char *const *cells);
/** Number of rows added, header included. */
size_t ctl_table_rows(const struct ctl_table *t);

/** Appends the rendered table (one line per row) to @out. CM_OK or cm_buf's code. */
int ctl_table_render(const struct ctl_table *t, struct cm_buf *out);

#endif /* CTL_CTL_TABLE_H */

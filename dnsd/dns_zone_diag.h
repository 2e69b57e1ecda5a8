/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_zone_diag.h -- zone file errors an operator can act on, as
 * nsd-checkzone reports them: the line where the problem starts, the
 * offending text and what was expected.
 *
 *   zone:9: "127.0.0.256" is not an IPv4 address (A record of www.fed.example.test.)
 *   zone:3: unbalanced parentheses: "(" opened here is never closed
 *
 * ldns parses the zone (dns_zone.c); when it refuses a record, this module
 * reads the record's text again and finds which field is wrong. Load time
 * only: allocates through ldns.
 */
#ifndef DNSD_DNS_ZONE_DIAG_H
#define DNSD_DNS_ZONE_DIAG_H

#include <stddef.h>

/**
 * Checks that parentheses (outside quotes and comments) balance in @text
 * (@len bytes). Returns 0 when they do; otherwise the 1-based line where the
 * problem starts, with the reason in @msg.
 */
int dns_zone_diag_parens(const char *text, size_t len, char *msg, size_t cap);

/**
 * Explains why the record on lines [@first, @last] of @text did not parse.
 * @prev_owner: the previous record's owner (absolute, text) for a line that
 * starts with a blank; @origin: the zone's origin (absolute, text).
 * Returns the line to report (the offending field's) and writes the reason
 * into @msg, or returns 0 when it finds nothing more precise than ldns.
 */
int dns_zone_diag_rr(const char *text, size_t len, int first, int last, const char *prev_owner,
                     const char *origin, char *msg, size_t cap);

#endif /* DNSD_DNS_ZONE_DIAG_H */

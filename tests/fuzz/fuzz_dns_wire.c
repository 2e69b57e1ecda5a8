/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_dns_wire.c -- dns_wire_parse on arbitrary bytes. A query that parses
 * must have a sane question; echoing it (question + OPT with the ECS option)
 * through the writer must give a message that parses back to the same
 * question and the same ECS.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "dnsd/dns_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_echo(const struct dns_request *req)
{
    uint8_t buf[512];
    struct dns_writer w;
    struct dns_request back;

    dns_writer_init(&w, buf, sizeof(buf));
    if (dns_writer_header(&w, req->id, 0, true) != CM_OK ||
        dns_writer_question(&w, req->qname, req->qname_len, req->qtype, req->qclass) != CM_OK)
        abort();
    struct dns_opt_out opt = {.udp_size = 1232,
                              .do_bit = req->edns.do_bit,
                              .ecs = &req->edns.ecs,
                              .cookie = req->edns.cookie.present ? req->edns.cookie.data : NULL,
                              .cookie_len = req->edns.cookie.len};
    if (req->edns.present && dns_writer_opt(&w, &opt) != CM_OK)
        abort();
    size_t len = dns_writer_finish(&w);
    if (dns_wire_parse(buf, len, &back) != DNS_PARSE_OK)
        abort();
    if (back.qname_len != req->qname_len || memcmp(back.qname, req->qname, req->qname_len) != 0 ||
        back.qtype != req->qtype || back.qclass != req->qclass ||
        back.edns.present != req->edns.present || back.edns.ecs.present != req->edns.ecs.present ||
        back.edns.cookie.present != req->edns.cookie.present ||
        back.edns.cookie.len != req->edns.cookie.len ||
        (req->edns.cookie.present &&
         memcmp(back.edns.cookie.data, req->edns.cookie.data, req->edns.cookie.len) != 0))
        abort();
    if (req->edns.ecs.present &&
        (back.edns.ecs.source_len != req->edns.ecs.source_len ||
         memcmp(back.edns.ecs.addr, req->edns.ecs.addr, sizeof(back.edns.ecs.addr)) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_request req;
    enum dns_parse_status st = dns_wire_parse(data, size, &req);

    if (st == DNS_PARSE_SHORT) {
        if (size >= DNS_HEADER_LEN)
            abort();
        return 0;
    }
    if (req.has_question) {
        if (req.qname < data || req.qname + req.qname_len > data + size ||
            dns_name_check(req.qname, req.qname_len) != req.qname_len)
            abort();
        for (size_t i = 0; i < req.qname_len; i++) {
            uint8_t c = req.qname[i];
            uint8_t lc = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
            if (req.qname_lc[i] != lc)
                abort();
        }
    }
    if (req.edns.ecs.present && (!req.edns.present || req.edns.ecs.scope_len != 0 ||
                                 req.edns.ecs.source_len > (req.edns.ecs.family == 1 ? 32 : 128)))
        abort();
    if (st == DNS_PARSE_OK && req.has_question)
        check_echo(&req);
    return 0;
}

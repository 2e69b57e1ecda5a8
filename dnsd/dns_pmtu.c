/* SPDX-License-Identifier: Apache-2.0 */
/* dns_pmtu.c -- UDP listeners ignore path MTU updates (see dns_pmtu.h). */
#include "dnsd/dns_pmtu.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/cm_err.h"

int dns_pmtu_omit(int fd, int family)
{
    int level = IPPROTO_IP, name = IP_MTU_DISCOVER, omit = IP_PMTUDISC_OMIT,
        dont = IP_PMTUDISC_DONT, rc;

    if (family == AF_INET6) {
        level = IPPROTO_IPV6;
        name = IPV6_MTU_DISCOVER;
        omit = IPV6_PMTUDISC_OMIT;
        dont = IPV6_PMTUDISC_DONT;
    }
    if (setsockopt(fd, level, name, &omit, sizeof(omit)) == 0)
        return CM_OK;
    rc = cm_err_from_errno(errno);
    (void)setsockopt(fd, level, name, &dont, sizeof(dont)); /* best effort: rc says why */
    return rc;
}

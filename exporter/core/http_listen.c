/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_listen.c - the HTTP server's listen sockets: "host:port" specs
 * ("[::1]:19367", ":19367" for every address) resolved and bound here, then
 * handed to libmicrohttpd (MHD_OPTION_LISTEN_SOCKET), so that the bound
 * address is known (port 0 included) and a reload keeps the same sockets.
 */
#include "http_int.h"
#include "log.h"
#include "num.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int http_format_addr(const struct sockaddr_storage *ss, char **out)
{
    char host[INET6_ADDRSTRLEN];
    char text[INET6_ADDRSTRLEN + 16];
    unsigned port;
    const void *a;

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

        a = &s6->sin6_addr;
        port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

        a = &s4->sin_addr;
        port = ntohs(s4->sin_port);
    }
    if (inet_ntop(ss->ss_family, a, host, sizeof(host)) == NULL)
        return CW_EIO;
    if (ss->ss_family == AF_INET6)
        snprintf(text, sizeof(text), "[%s]:%u", host, port);
    else
        snprintf(text, sizeof(text), "%s:%u", host, port);
    *out = strdup(text);
    return *out != NULL ? CW_OK : CW_ENOMEM;
}

/* http_bind() creates a listening socket on 'sa'. Returns the fd, or -1
 * with errno set. 'v6only' is applied to IPv6 sockets. */
static int http_bind(const struct sockaddr *sa, socklen_t len, bool v6only)
{
    int one = 1;
    int v6 = v6only ? 1 : 0;
    int saved;
    int fd;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        goto out_close;
    if (sa->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof(v6)) != 0)
        goto out_close;
    if (bind(fd, sa, len) != 0)
        goto out_close;
    if (listen(fd, SOMAXCONN) != 0)
        goto out_close;
    return fd;

out_close:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* http_split() parses ":PORT", "HOST:PORT" and "[V6]:PORT" into host and
 * port text and the port's number; returns NULL or a reason. */
static const char *http_split(const char *spec, char *host, size_t hostlen, char *port,
                              size_t portlen, uint16_t *portnum, bool *bracketed)
{
    const char *colon;
    const char *h = spec;
    size_t hl;
    size_t pl;
    uint64_t v = 0;

    *bracketed = false;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');

        if (close == NULL)
            return "missing ']' after an IPv6 address";
        if (close[1] != ':')
            return "missing port (write [address]:port)";
        h = spec + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
        *bracketed = true;
        if (hl == 0)
            return "empty IPv6 address";
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL)
            return "missing port (write host:port or :port)";
        hl = (size_t)(colon - spec);
        if (memchr(spec, ':', hl) != NULL)
            return "IPv6 addresses must be written in brackets, e.g. [::1]:9100";
    }
    pl = strlen(colon + 1);
    if (pl == 0 || pl > 5 || cw_parse_u64(colon + 1, pl, &v) != CW_OK || v > 65535)
        return "port must be a number from 0 to 65535";
    if (hl >= hostlen || pl >= portlen)
        return "host name too long";
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl);
    port[pl] = '\0';
    *portnum = (uint16_t)v;
    return NULL;
}

/* http_listen() binds one listen address and records the bound address. */
int http_listen(const char *spec, struct http_listener *l, struct cw_diag *diag)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char errbuf[128];
    char host[256];
    char port[8];
    uint16_t portnum;
    const char *why;
    bool bracketed;
    int err = 0;
    int rc;

    l->fd = -1;
    why = http_split(spec, host, sizeof(host), port, sizeof(port), &portnum, &bracketed);
    if (why != NULL) {
        cw_diagf(diag, NULL, "listen address \"%s\": %s", spec, why);
        return CW_ECONFIG;
    }
    if (host[0] == '\0') {
        struct sockaddr_in6 any6;
        struct sockaddr_in any4;

        /* All addresses: IPv6 "any" accepting IPv4 too, or IPv4 alone on
         * hosts without IPv6. */
        memset(&any6, 0, sizeof(any6));
        any6.sin6_family = AF_INET6;
        any6.sin6_addr = in6addr_any;
        any6.sin6_port = htons(portnum);
        l->fd = http_bind((const struct sockaddr *)&any6, sizeof(any6), false);
        if (l->fd < 0 &&
            (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL || errno == EPROTONOSUPPORT)) {
            memset(&any4, 0, sizeof(any4));
            any4.sin_family = AF_INET;
            any4.sin_addr.s_addr = htonl(INADDR_ANY);
            any4.sin_port = any6.sin6_port;
            l->fd = http_bind((const struct sockaddr *)&any4, sizeof(any4), false);
        }
        err = errno;
    } else {
        struct addrinfo hints;
        struct addrinfo *ai = NULL;

        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV | (bracketed ? AI_NUMERICHOST : 0);
        rc = getaddrinfo(host, port, &hints, &ai);
        if (rc != 0) {
            cw_diagf(diag, NULL, "listen address \"%s\": cannot resolve %s: %s", spec, host,
                     gai_strerror(rc));
            cw_log(CW_LOG_ERROR, "http", "cannot resolve listen address", "address", spec, "err",
                   gai_strerror(rc), (char *)NULL);
            return CW_ECONFIG;
        }
        l->fd = http_bind(ai->ai_addr, ai->ai_addrlen, true);
        err = errno;
        freeaddrinfo(ai);
    }
    if (l->fd < 0) {
        cw_strerror_r(err, errbuf, sizeof(errbuf));
        cw_diagf(diag, NULL, "listen address \"%s\": cannot listen: %s", spec, errbuf);
        cw_log(CW_LOG_ERROR, "http", "cannot listen", "address", spec, "err", errbuf, (char *)NULL);
        return CW_EIO;
    }
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sslen) != 0) {
        cw_strerror_r(errno, errbuf, sizeof(errbuf));
        cw_diagf(diag, NULL, "listen address \"%s\": getsockname: %s", spec, errbuf);
        goto out_close;
    }
    rc = http_format_addr(&ss, &l->addr);
    if (rc != CW_OK) {
        cw_diagf(diag, NULL, "listen address \"%s\": %s", spec, cw_strerror(rc));
        goto out_close;
    }
    return CW_OK;

out_close:
    close(l->fd);
    l->fd = -1;
    return CW_EIO;
}

/* mevblade API load generator: open-loop HTTP/1.1 GET at a fixed rate, and a WebSocket fan-out receiver.
 *
 * Built at bench time with the machine's C compiler (see sim/bench/loadgen.py); no dependencies beyond libc.
 * One thread, epoll, non-blocking sockets, TCP_NODELAY. Both modes print one JSON object on stdout.
 *
 *   loadgen rest HOST PORT PATH AUTH RATE DURATION_S CONNECTIONS TIMEOUT_S GZIP(0|1)
 *       Request k is *scheduled* at t0 + k/RATE (CLOCK_MONOTONIC, a timerfd wakes the loop exactly then).
 *       A scheduled request goes out on an idle keep-alive connection at once, or waits in FIFO order for
 *       the next one to become idle; its latency is counted from the scheduled time (open loop: a stalled
 *       server cannot slow the client down and hide its own delay), and separately from the actual send.
 *       A request unanswered after TIMEOUT_S is an error (its connection is closed and reopened).
 *
 *   loadgen sendfloor SOCKETS ROUNDS BYTES
 *       The kernel's price of one small send to each of SOCKETS loopback TCP sockets (see run_sendfloor).
 *
 *   loadgen ws HOST PORT AUTH CLIENTS EVENTS TIMEOUT_S
 *       Opens CLIENTS WebSocket connections to /ws (in batches, so the accept queue does not overflow),
 *       subscribes each to "opportunities", prints "READY <n>" on stderr once every client is subscribed,
 *       then records for every event frame `receive time - ts` (ts: the server's CLOCK_REALTIME publish
 *       time inside the event JSON). Ends when every client got EVENTS events or after TIMEOUT_S.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUESTS 200000
#define MAX_CONNS 8192
#define BUF_SIZE 65536

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* nearest-rank on the sorted array, same rule as sim/bench/api.py's _pct */
static double pct(const double *s, size_t n, double q) {
    if (n == 0) return -1;
    double k = q / 100.0 * (double)(n - 1);
    size_t i = (size_t)(k + 0.5);
    if (i >= n) i = n - 1;
    return s[i];
}

static void print_summary(const char *name, double *v, size_t n) {
    qsort(v, n, sizeof(double), cmp_double);
    if (n == 0) {
        printf("\"%s\": {\"p50_ms\": null, \"p95_ms\": null, \"p99_ms\": null, \"p999_ms\": null, \"max_ms\": null, "
               "\"samples\": 0}", name);
        return;
    }
    printf("\"%s\": {\"p50_ms\": %.3f, \"p95_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f, "
           "\"samples\": %zu}", name, pct(v, n, 50), pct(v, n, 95), pct(v, n, 99), pct(v, n, 99.9), v[n - 1], n);
}

static int open_conn(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        close(fd);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------------------------------------------ REST */

enum { C_CONNECTING, C_IDLE, C_BUSY, C_DEAD };

struct rconn {
    int fd;
    int state;
    long req;        /* request index in flight, -1 if none */
    double t_send;
    char *buf;
    size_t len;
    long body_need;  /* -1 while reading headers */
    size_t hdr_len;
    int status;
    int close_after;
};

static const char *g_host;
static int g_port;
static int g_ep;
static long g_errors_status, g_errors_timeout, g_errors_conn, g_errors_parse, g_ok;
static long g_status_counts[600];

static void rconn_open(struct rconn *c) {
    c->fd = open_conn(g_host, g_port);
    c->len = 0;
    c->body_need = -1;
    c->req = -1;
    if (c->fd < 0) {
        c->state = C_DEAD;
        return;
    }
    c->state = C_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void rconn_close(struct rconn *c) {
    if (c->fd >= 0) {
        epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_DEAD;
    c->req = -1;
}

static void set_events(struct rconn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static long find_header_int(const char *h, size_t n, const char *name) {
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < n; i++) {
        if ((i == 0 || h[i - 1] == '\n') && strncasecmp(h + i, name, nl) == 0) {
            return strtol(h + i + nl, NULL, 10);
        }
    }
    return -1;
}

static int has_header_token(const char *h, size_t n, const char *name, const char *token) {
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < n; i++) {
        if ((i == 0 || h[i - 1] == '\n') && strncasecmp(h + i, name, nl) == 0) {
            const char *e = memchr(h + i, '\n', n - i);
            size_t span = e ? (size_t)(e - (h + i)) : n - i;
            return memmem(h + i, span, token, strlen(token)) != NULL;
        }
    }
    return 0;
}

/* 1 = a whole response was consumed, 0 = need more, -1 = protocol error */
static int rconn_parse(struct rconn *c) {
    if (c->body_need < 0) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return c->len >= BUF_SIZE ? -1 : 0;
        c->hdr_len = (size_t)(end - c->buf) + 4;
        if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) return -1;
        c->status = atoi(c->buf + 9);
        long cl = find_header_int(c->buf, c->hdr_len, "content-length:");
        if (cl < 0) return -1; /* every answer of this API carries a length */
        c->body_need = cl;
        c->close_after = has_header_token(c->buf, c->hdr_len, "connection:", "close");
    }
    if (c->len >= c->hdr_len + (size_t)c->body_need) {
        size_t used = c->hdr_len + (size_t)c->body_need;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        c->body_need = -1;
        return 1;
    }
    if (c->hdr_len + (size_t)c->body_need > BUF_SIZE) {
        /* large body: drop what we have, keep counting */
        size_t have = c->len - c->hdr_len;
        c->body_need -= (long)have;
        c->len = c->hdr_len;
    }
    return 0;
}

static int run_rest(int argc, char **argv) {
    if (argc != 11) {
        fprintf(stderr, "usage: loadgen rest HOST PORT PATH AUTH RATE DURATION CONNECTIONS TIMEOUT GZIP\n");
        return 2;
    }
    g_host = argv[2];
    g_port = atoi(argv[3]);
    const char *path = argv[4], *auth = argv[5];
    double rate = atof(argv[6]), duration = atof(argv[7]);
    int nconn = atoi(argv[8]);
    double timeout = atof(argv[9]);
    int gz = atoi(argv[10]);
    long n = (long)(rate * duration + 0.5);
    if (rate <= 0 || n < 1 || n > MAX_REQUESTS || nconn < 1 || nconn > MAX_CONNS || timeout <= 0) {
        fprintf(stderr, "rate*duration must be 1..%d requests, connections 1..%d, timeout > 0\n", MAX_REQUESTS,
                MAX_CONNS);
        return 2;
    }
    char req[4096];
    int reqlen = snprintf(req, sizeof req,
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: %s\r\n%sUser-Agent: mevblade-loadgen\r\n\r\n",
                          path, g_host, g_port, auth, gz ? "Accept-Encoding: gzip\r\n" : "");
    if (reqlen <= 0 || reqlen >= (int)sizeof req) return 2;

    g_ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, tfd, &tev);

    struct rconn *conns = calloc((size_t)nconn, sizeof *conns);
    double *lat_sched = calloc((size_t)n, sizeof(double));
    double *lat_service = calloc((size_t)n, sizeof(double));
    double *t_sched_of = calloc((size_t)n, sizeof(double));
    size_t nlat = 0;
    for (int i = 0; i < nconn; i++) {
        conns[i].buf = malloc(BUF_SIZE);
        rconn_open(&conns[i]);
    }
    /* wait until the connections are up (bounded), so connection set-up is not in the measurement */
    double t_up = mono() + 10;
    int up = 0, failed = 0;
    for (int i = 0; i < nconn; i++)
        if (conns[i].state == C_DEAD) failed++;
    struct epoll_event evs[256];
    while (up + failed < nconn && mono() < t_up) {
        int k = epoll_wait(g_ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            struct rconn *c = evs[i].data.ptr;
            if (!c || c->state != C_CONNECTING) continue;
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err || (evs[i].events & (EPOLLERR | EPOLLHUP))) {
                rconn_close(c); /* reopened by the main loop when a request needs it */
                g_errors_conn++;
                failed++;
                continue;
            }
            c->state = C_IDLE;
            set_events(c, EPOLLIN | EPOLLRDHUP);
            up++;
        }
    }

    const double t0 = mono() + 0.01;
    for (long k = 0; k < n; k++) t_sched_of[k] = t0 + (double)k / rate;
    long next_sched = 0;  /* next request whose time has not come yet */
    long next_send = 0;   /* next request to put on a connection (FIFO) */
    long done = 0;
    double hard_end = t0 + duration + timeout + 1;

    while (done < n && mono() < hard_end) {
        double now = mono();
        while (next_sched < n && t_sched_of[next_sched] <= now) next_sched++;
        /* hand due requests to idle connections */
        for (int i = 0; i < nconn && next_send < next_sched; i++) {
            struct rconn *c = &conns[i];
            if (c->state == C_DEAD) {
                rconn_open(c);
                continue;
            }
            if (c->state != C_IDLE) continue;
            ssize_t w = send(c->fd, req, (size_t)reqlen, MSG_NOSIGNAL);
            if (w != reqlen) { /* a request this small fits the empty send buffer of an idle connection */
                rconn_close(c);
                g_errors_conn++;
                continue;
            }
            c->state = C_BUSY;
            c->req = next_send++;
            c->t_send = mono();
        }
        /* time out stuck requests */
        for (int i = 0; i < nconn; i++) {
            struct rconn *c = &conns[i];
            if (c->state == C_BUSY && now - c->t_send > timeout) {
                g_errors_timeout++;
                done++;
                rconn_close(c);
            }
        }
        /* next wake-up: the next scheduled request (timerfd, ns resolution) or I/O */
        int wait_ms = 50;
        if (next_sched < n) {
            double t = t_sched_of[next_sched];
            struct itimerspec its = {0};
            its.it_value.tv_sec = (time_t)t;
            its.it_value.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
            if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
            wait_ms = 1000; /* the timer wakes us earlier */
        }
        if (next_send < next_sched) wait_ms = 1; /* requests waiting for a connection: poll briefly */
        int k = epoll_wait(g_ep, evs, 256, wait_ms);
        double t_now = mono();
        for (int i = 0; i < k; i++) {
            struct rconn *c = evs[i].data.ptr;
            if (!c) {
                uint64_t x;
                ssize_t r = read(tfd, &x, sizeof x);
                (void)r;
                continue;
            }
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err || (evs[i].events & (EPOLLERR | EPOLLHUP))) {
                    rconn_close(c);
                    g_errors_conn++;
                } else {
                    c->state = C_IDLE;
                    set_events(c, EPOLLIN | EPOLLRDHUP);
                }
                continue;
            }
            if (c->state == C_DEAD) continue;
            for (;;) {
                ssize_t r = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
                if (r > 0) {
                    c->len += (size_t)r;
                    int p;
                    while ((p = rconn_parse(c)) == 1) {
                        if (c->req >= 0) {
                            double ts = t_sched_of[c->req];
                            if (c->status >= 0 && c->status < 600) g_status_counts[c->status]++;
                            if (c->status == 200) {
                                lat_sched[nlat] = (t_now - ts) * 1e3;
                                lat_service[nlat] = (t_now - c->t_send) * 1e3;
                                nlat++;
                                g_ok++;
                            } else {
                                g_errors_status++;
                            }
                            done++;
                            c->req = -1;
                            c->state = C_IDLE;
                        }
                        if (c->close_after) {
                            rconn_close(c);
                            break;
                        }
                    }
                    if (p < 0) {
                        g_errors_parse++;
                        if (c->req >= 0) done++;
                        rconn_close(c);
                        break;
                    }
                    if (c->state == C_DEAD) break;
                    continue;
                }
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                /* closed by the server or error */
                if (c->req >= 0) {
                    g_errors_conn++;
                    done++;
                }
                rconn_close(c);
                break;
            }
        }
    }
    double t_end = mono();
    long unsent = n - next_send;
    printf("{\"requests\": %ld, \"sent\": %ld, \"answered_200\": %ld, \"elapsed_s\": %.3f, \"offered_rps\": %.1f, "
           "\"achieved_rps\": %.1f, \"connections\": %d, \"connections_up_at_start\": %d, ",
           n, next_send, g_ok, t_end - t0, rate, (double)g_ok / (t_end - t0 > 0 ? t_end - t0 : 1), nconn, up);
    printf("\"errors\": {\"status\": %ld, \"timeout\": %ld, \"connection\": %ld, \"parse\": %ld, \"unsent\": %ld, "
           "\"unfinished\": %ld}, ",
           g_errors_status, g_errors_timeout, g_errors_conn, g_errors_parse, unsent, next_send - done);
    printf("\"status_counts\": {");
    int first = 1;
    for (int s = 0; s < 600; s++)
        if (g_status_counts[s]) {
            printf("%s\"%d\": %ld", first ? "" : ", ", s, g_status_counts[s]);
            first = 0;
        }
    printf("}, ");
    print_summary("from_schedule", lat_sched, nlat);
    printf(", ");
    print_summary("service", lat_service, nlat);
    printf("}\n");
    fflush(stdout);
    return 0;
}

/* -------------------------------------------------------------------------------------------------- WS */

enum { W_CONNECTING, W_HANDSHAKE, W_SUBSCRIBING, W_OPEN, W_DONE, W_DEAD };

struct wconn {
    int fd;
    int state;
    int got;
    unsigned char *buf;
    size_t len;
};

static int ws_send_text(int fd, const char *text) {
    size_t n = strlen(text);
    unsigned char frame[1024];
    if (n > sizeof frame - 14) return -1;
    size_t h = 0;
    frame[h++] = 0x81;
    if (n < 126) {
        frame[h++] = (unsigned char)(0x80 | n);
    } else {
        frame[h++] = 0x80 | 126;
        frame[h++] = (unsigned char)(n >> 8);
        frame[h++] = (unsigned char)(n & 0xff);
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(frame + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++) frame[h + i] = (unsigned char)text[i] ^ mask[i & 3];
    return send(fd, frame, h + n, MSG_NOSIGNAL) == (ssize_t)(h + n) ? 0 : -1;
}

static int run_ws(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: loadgen ws HOST PORT AUTH CLIENTS EVENTS TIMEOUT\n");
        return 2;
    }
    g_host = argv[2];
    g_port = atoi(argv[3]);
    const char *auth = argv[4];
    int nclients = atoi(argv[5]), nevents = atoi(argv[6]);
    double timeout = atof(argv[7]);
    if (nclients < 1 || nclients > MAX_CONNS || nevents < 1 || (long)nclients * nevents > 10000000) {
        fprintf(stderr, "clients must be 1..%d and events >= 1\n", MAX_CONNS);
        return 2;
    }
    char hs[1024], sub[1024];
    int hl = snprintf(hs, sizeof hs,
                      "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                      g_host, g_port);
    snprintf(sub, sizeof sub, "{\"type\":\"subscribe\",\"channels\":[\"opportunities\"],\"auth_token\":\"%s\"}", auth);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct wconn *cs = calloc((size_t)nclients, sizeof *cs);
    long expected = (long)nclients * nevents;
    double *lat = calloc((size_t)expected, sizeof(double));
    size_t nlat = 0;
    long closed_by_server = 0, conn_errors = 0, refused = 0;
    int opened = 0, subscribed = 0, finished = 0, ready_said = 0;
    double deadline = mono() + timeout;
    struct epoll_event evs[512];
    while (finished < nclients && mono() < deadline) {
        /* open in batches of 100 outstanding handshakes */
        int pending = 0;
        for (int i = 0; i < opened; i++)
            if (cs[i].state == W_CONNECTING || cs[i].state == W_HANDSHAKE || cs[i].state == W_SUBSCRIBING) pending++;
        while (opened < nclients && pending < 100) {
            struct wconn *c = &cs[opened++];
            c->buf = malloc(BUF_SIZE);
            c->fd = open_conn(g_host, g_port);
            if (c->fd < 0) {
                c->state = W_DEAD;
                conn_errors++;
                finished++;
                continue;
            }
            c->state = W_CONNECTING;
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            pending++;
        }
        int k = epoll_wait(ep, evs, 512, 100);
        double now_wall = wall();
        for (int i = 0; i < k; i++) {
            struct wconn *c = evs[i].data.ptr;
            if (c->state == W_DEAD || c->state == W_DONE) continue;
            if (c->state == W_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err || send(c->fd, hs, (size_t)hl, MSG_NOSIGNAL) != hl) {
                    conn_errors++;
                    goto dead;
                }
                c->state = W_HANDSHAKE;
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            for (;;) {
                ssize_t r = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                    if (c->state == W_OPEN) closed_by_server++; else conn_errors++;
                    goto dead;
                }
                if (r < 0) break;
                c->len += (size_t)r;
                if (c->state == W_HANDSHAKE) {
                    unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
                    if (!end) continue;
                    if (c->len < 12 || memcmp(c->buf + 9, "101", 3) != 0) {
                        conn_errors++;
                        goto dead;
                    }
                    size_t used = (size_t)(end - c->buf) + 4;
                    memmove(c->buf, c->buf + used, c->len - used);
                    c->len -= used;
                    if (ws_send_text(c->fd, sub) < 0) {
                        conn_errors++;
                        goto dead;
                    }
                    c->state = W_SUBSCRIBING;
                }
                /* frames */
                for (;;) {
                    if (c->len < 2) break;
                    unsigned char *b = c->buf;
                    int op = b[0] & 0x0f;
                    uint64_t pl = b[1] & 0x7f;
                    size_t h = 2;
                    if (pl == 126) {
                        if (c->len < 4) break;
                        pl = ((uint64_t)b[2] << 8) | b[3];
                        h = 4;
                    } else if (pl == 127) {
                        if (c->len < 10) break;
                        pl = 0;
                        for (int j = 0; j < 8; j++) pl = (pl << 8) | b[2 + j];
                        h = 10;
                    }
                    if (b[1] & 0x80) h += 4; /* servers do not mask; tolerate it anyway (payload left masked) */
                    if (h + pl > BUF_SIZE) {
                        conn_errors++;
                        goto dead;
                    }
                    if (c->len < h + pl) break;
                    char *p = (char *)b + h;
                    if (op == 0x8) { /* close */
                        if (c->state == W_SUBSCRIBING) refused++; else closed_by_server++;
                        goto dead;
                    }
                    if (op == 0x1) {
                        if (c->state == W_SUBSCRIBING && memmem(p, pl, "\"subscribed\"", 12)) {
                            c->state = W_OPEN;
                            subscribed++;
                        } else if (c->state == W_OPEN && memmem(p, pl, "\"opportunity\"", 13)) {
                            char *ts = memmem(p, pl, "\"ts\":", 5);
                            if (ts && nlat < (size_t)expected) {
                                double t = strtod(ts + 5, NULL);
                                lat[nlat++] = (now_wall - t) * 1e3;
                            }
                            c->got++;
                            if (c->got >= nevents) {
                                c->state = W_DONE;
                                finished++;
                            }
                        }
                    }
                    memmove(c->buf, c->buf + h + pl, c->len - h - pl);
                    c->len -= h + pl;
                }
                if (c->state == W_DONE) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    c->fd = -1;
                    break;
                }
            }
            continue;
        dead:
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->state = W_DEAD;
            finished++;
        }
        if (!ready_said && subscribed + (int)conn_errors + (int)refused >= nclients) {
            fprintf(stderr, "READY %d\n", subscribed);
            fflush(stderr);
            ready_said = 1;
        }
    }
    long received = 0;
    for (int i = 0; i < nclients; i++) received += cs[i].got;
    printf("{\"clients\": %d, \"subscribed\": %d, \"events\": %d, \"expected\": %ld, \"received\": %ld, "
           "\"lost\": %ld, \"errors\": {\"connection\": %ld, \"refused\": %ld, \"closed_by_server\": %ld}, ",
           nclients, subscribed, nevents, expected, received, expected - received, conn_errors, refused,
           closed_by_server);
    print_summary("latency", lat, nlat);
    printf("}\n");
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------------------------------------ send floor */

/* The kernel's price of one small write to each of N loopback TCP sockets whose reader (a forked child)
 * sleeps in epoll_wait, as the WebSocket clients do: CPU (CLOCK_PROCESS_CPUTIME_ID, this process only)
 * and wall time per send, median over ROUNDS rounds. A lower bound for a fan-out to N sockets. */
static int run_sendfloor(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: loadgen sendfloor SOCKETS ROUNDS BYTES\n");
        return 2;
    }
    int n = atoi(argv[2]), rounds = atoi(argv[3]), bytes = atoi(argv[4]);
    if (n < 1 || n > MAX_CONNS || rounds < 1 || rounds > 1000 || bytes < 1 || bytes > 4096) return 2;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) return 1;
    getsockname(ls, (struct sockaddr *)&a, &al);
    int *cfd = calloc((size_t)n, sizeof(int)), *sfd = calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(cfd[i], (struct sockaddr *)&a, sizeof a) < 0) return 1;
        sfd[i] = accept(ls, NULL, NULL);
        if (sfd[i] < 0) return 1;
        int one = 1;
        setsockopt(sfd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    int ready[2];
    if (pipe(ready) < 0) return 1;
    pid_t child = fork();
    if (child == 0) { /* reader: epoll over the client ends, reads everything, exits */
        int ep = epoll_create1(0);
        for (int i = 0; i < n; i++) {
            fcntl(cfd[i], F_SETFL, O_NONBLOCK);
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd[i]};
            epoll_ctl(ep, EPOLL_CTL_ADD, cfd[i], &ev);
        }
        long want = (long)n * rounds * bytes, got = 0;
        char buf[65536];
        ssize_t w = write(ready[1], "r", 1);
        (void)w;
        struct epoll_event evs[512];
        while (got < want) {
            int k = epoll_wait(ep, evs, 512, 10000);
            if (k <= 0) break;
            for (int i = 0; i < k; i++) {
                ssize_t r;
                while ((r = read(evs[i].data.fd, buf, sizeof buf)) > 0) got += r;
            }
        }
        _exit(0);
    }
    for (int i = 0; i < n; i++) close(cfd[i]);
    char c;
    if (read(ready[0], &c, 1) != 1) return 1;
    char *frame = malloc((size_t)bytes);
    memset(frame, 'x', (size_t)bytes);
    double *cpu = calloc((size_t)rounds, sizeof(double)), *wl = calloc((size_t)rounds, sizeof(double));
    for (int r = 0; r < rounds; r++) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL); /* the reader is back asleep in epoll_wait */
        struct timespec c0, c1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        double t0 = mono();
        for (int i = 0; i < n; i++)
            if (send(sfd[i], frame, (size_t)bytes, MSG_NOSIGNAL) != bytes) return 1;
        double t1 = mono();
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        cpu[r] = ((c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) * 1e-9) / n * 1e6;
        wl[r] = (t1 - t0) / n * 1e6;
    }
    int status;
    waitpid(child, &status, 0);
    qsort(cpu, (size_t)rounds, sizeof(double), cmp_double);
    qsort(wl, (size_t)rounds, sizeof(double), cmp_double);
    printf("{\"sockets\": %d, \"rounds\": %d, \"bytes\": %d, \"cpu_us_per_send_median\": %.3f, "
           "\"cpu_us_per_send_min\": %.3f, \"wall_us_per_send_median\": %.3f, \"wall_ms_per_round_median\": %.3f}\n",
           n, rounds, bytes, pct(cpu, (size_t)rounds, 50), cpu[0], pct(wl, (size_t)rounds, 50),
           pct(wl, (size_t)rounds, 50) * n / 1e3);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "sendfloor") == 0) return run_sendfloor(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "rest") == 0) return run_rest(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "ws") == 0) return run_ws(argc, argv);
    fprintf(stderr, "usage: loadgen rest|ws ...\n");
    return 2;
}

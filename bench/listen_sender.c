/* Load generator for `make bench-listeners` (bench/listeners.sh, CONTRACT D61): what logger and
 * snmptrap cannot offer (tens of thousands of messages a second, paced).
 *   listen_sender udp  PORT RATE SECONDS [PAYLOAD_FILE]
 *       RATE datagrams/s (0 = as fast as the socket takes them) to 127.0.0.1:PORT for SECONDS,
 *       sendmmsg in 1 ms slices. Without PAYLOAD_FILE each datagram is an RFC 5424 line of
 *       about 200 bytes, severity err, with a sequence number; with it, the file's bytes (an SNMP
 *       trap). Prints "sent N in S s".
 *   listen_sender tcp  PORT CONNS TOTAL
 *       TOTAL octet-counted RFC 5424 messages over CONNS connections (one process each),
 *       written as fast as the listener reads them. Prints "sent N in S s".
 * Not a test; no error leaves it silently: a failed send or connect exits 1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLICE_NS 1000000L
#define MMSG 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int line(char *buf, size_t cap, long seq, int conn)
{
    return snprintf(buf, cap,
                    "<163>1 2026-01-01T00:00:00.000Z bench-host bench-app %d MSG42 - bench message %ld from "
                    "connection %d: disk /var/lib/data usage above threshold on volume group vg0 (95%%)",
                    conn, seq, conn);
}

static int run_udp(int port, long rate, double seconds, const char *payload_file)
{
    static char payload[65536];
    long plen = 0;
    if (payload_file) {
        FILE *f = fopen(payload_file, "rb");
        if (!f || (plen = (long)fread(payload, 1, sizeof payload, f)) <= 0) {
            perror(payload_file);
            return 1;
        }
        fclose(f);
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    static char bufs[MMSG][512];
    struct mmsghdr msgs[MMSG];
    struct iovec iov[MMSG];
    long sent = 0, seq = 0;
    double start = now_s();
    while (now_s() - start < seconds) {
        double el = now_s() - start;
        long want = rate > 0 ? (long)(el * (double)rate) + 1 - sent : MMSG;
        if (want <= 0) {
            struct timespec ts = {0, SLICE_NS / 4};
            nanosleep(&ts, NULL);
            continue;
        }
        while (want > 0) {
            int n = want > MMSG ? MMSG : (int)want;
            for (int i = 0; i < n; i++) {
                if (payload_file) {
                    iov[i].iov_base = payload;
                    iov[i].iov_len = (size_t)plen;
                } else {
                    iov[i].iov_base = bufs[i];
                    iov[i].iov_len = (size_t)line(bufs[i], sizeof bufs[i], seq++, 0);
                }
                memset(&msgs[i], 0, sizeof msgs[i]);
                msgs[i].msg_hdr.msg_name = &to;
                msgs[i].msg_hdr.msg_namelen = sizeof to;
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            int k = sendmmsg(fd, msgs, (unsigned)n, 0);
            if (k < 0) {
                if (errno == ENOBUFS || errno == EAGAIN)
                    continue;
                perror("sendmmsg");
                return 1;
            }
            sent += k;
            want -= k;
        }
    }
    printf("sent %ld in %.3f s\n", sent, now_s() - start);
    return 0;
}

static int tcp_child(int port, int conn, long n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        perror("connect");
        return 1;
    }
    static char out[1 << 16];
    size_t used = 0;
    char msg[512];
    for (long i = 0; i < n; i++) {
        int ml = line(msg, sizeof msg, i, conn);
        if (used + (size_t)ml + 16 > sizeof out) {
            for (size_t off = 0; off < used;) {
                ssize_t w = write(fd, out + off, used - off);
                if (w < 0) {
                    perror("write");
                    return 1;
                }
                off += (size_t)w;
            }
            used = 0;
        }
        used += (size_t)sprintf(out + used, "%d %s", ml, msg);
    }
    for (size_t off = 0; off < used;) {
        ssize_t w = write(fd, out + off, used - off);
        if (w < 0) {
            perror("write");
            return 1;
        }
        off += (size_t)w;
    }
    close(fd);
    return 0;
}

static int run_tcp(int port, int conns, long total)
{
    double start = now_s();
    for (int c = 0; c < conns; c++) {
        pid_t p = fork();
        if (p == 0)
            _exit(tcp_child(port, c, total / conns + (c < total % conns ? 1 : 0)));
        if (p < 0) {
            perror("fork");
            return 1;
        }
    }
    int rc = 0, st;
    while (wait(&st) > 0)
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = 1;
    printf("sent %ld in %.3f s\n", total, now_s() - start);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "udp") == 0)
        return run_udp(atoi(argv[2]), atol(argv[3]), atof(argv[4]), argc > 5 ? argv[5] : NULL);
    if (argc == 5 && strcmp(argv[1], "tcp") == 0)
        return run_tcp(atoi(argv[2]), atoi(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: listen_sender udp PORT RATE SECONDS [PAYLOAD_FILE] | tcp PORT CONNS TOTAL\n");
    return 2;
}

/* The bare reference: only the system-call loop, for judging xferbench's own overhead (scripts/bench-peers.sh).
 *
 *   bare recv PORT [RXBUF]                    listen on 127.0.0.1:PORT (0: a port the kernel picks), print "ready
 *                                             PORT", accept one connection, read to EOF into RXBUF bytes
 *                                             (default 131072); print "recv BYTES FIRST_NS LAST_NS"
 *   bare send PORT FILE sendfile|read CHUNK   send FILE over one connection; print "send BYTES START_NS END_NS"
 *
 * Times are CLOCK_MONOTONIC nanoseconds, comparable between the two processes on one host. Buffers are page-aligned,
 * as xferbench's are: a receive buffer 16 bytes into a page (where malloc puts a 128 KiB block) copies 2-3x slower. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int do_recv(int port, size_t rxbuf) {
    struct sockaddr_in a = loopback(port);
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len))
        die("listen");
    printf("ready %d\n", ntohs(a.sin_port));
    fflush(stdout);
    int c = accept(l, NULL, NULL);
    if (c < 0) die("accept");
    char *buf = aligned_alloc(4096, (rxbuf + 4095) / 4096 * 4096);
    memset(buf, 1, rxbuf);
    long long total = 0, first = 0, last = 0;
    for (;;) {
        ssize_t n = read(c, buf, rxbuf);
        if (n < 0) die("read");
        if (n == 0) break;
        last = now_ns();
        if (!first) first = last;
        total += n;
    }
    printf("recv %lld %lld %lld\n", total, first, last);
    return 0;
}

static int do_send(int port, const char *path, const char *mode, size_t chunk) {
    struct sockaddr_in a = loopback(port);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a)) die("connect");
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("open");
    struct stat st;
    fstat(fd, &st);
    char *buf = strcmp(mode, "read") == 0 ? aligned_alloc(4096, (chunk + 4095) / 4096 * 4096) : NULL;
    if (buf) memset(buf, 1, chunk);
    long long start = now_ns();
    off_t off = 0;
    while (off < st.st_size) {
        size_t want = st.st_size - off < (off_t)chunk ? (size_t)(st.st_size - off) : chunk;
        if (!buf) {
            ssize_t n = sendfile(s, fd, &off, want);
            if (n <= 0) die("sendfile");
        } else {
            ssize_t n = pread(fd, buf, want, off);
            if (n <= 0) die("pread");
            for (ssize_t done = 0; done < n;) {
                ssize_t w = send(s, buf + done, n - done, MSG_NOSIGNAL);
                if (w < 0) die("send");
                done += w;
            }
            off += n;
        }
    }
    long long end = now_ns();
    shutdown(s, SHUT_WR);
    printf("send %lld %lld %lld\n", (long long)off, start, end);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "recv") == 0) return do_recv(atoi(argv[2]), argc > 3 ? atol(argv[3]) : 131072);
    if (argc == 6 && strcmp(argv[1], "send") == 0) return do_send(atoi(argv[2]), argv[3], argv[4], atol(argv[5]));
    fprintf(stderr, "usage: bare recv PORT [RXBUF] | bare send PORT FILE sendfile|read CHUNK\n");
    return 2;
}

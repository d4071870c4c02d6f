/* Which sender's pages will TCP_ZEROCOPY_RECEIVE map on one box? (docs/findings.md, receive zero-copy)
 *
 *   rx-map FILE sendfile|write-splice|direct-splice [CHUNK]
 *
 * Sends FILE over one loopback connection (127.0.0.1, a port the kernel picks) in CHUNK-byte steps (default 1 MiB) and receives it
 * with TCP_ZEROCOPY_RECEIVE into a 2 MiB mapping of the socket (copy buffer and SO_RCVLOWAT of 1 MiB, as the
 * kernel's tcp_mmap selftest does); prints the MB/s and the shares of the bytes that were mapped, copied by the
 * call and received with recv. The senders:
 *   sendfile       page-cache pages (what xferbench's sendfile, splice and mmap paths hand TCP);
 *   write-splice   pread into a buffer, write it into a pipe (fresh pipe pages), splice the pipe to the socket;
 *   direct-splice  splice from the file opened O_DIRECT into a pipe (fresh pages the disk is read into), then to
 *                  the socket.
 * Run it in a namespace whose loopback has an MTU that makes whole-page segments, e.g. as root:
 *   unshare -n sh -c 'ip link set lo mtu 61492 up; ./rx-map FILE write-splice'
 * Since the can_map_frag() check (Linux 6.8 and the stable kernels), the kernel maps no page that has an owner
 * (page cache, anonymous memory) or is compound (the socket's page fragments): the pipe's own pages may pass. In
 * xferbench, the pages loopback copies MSG_ZEROCOPY and SEND_ZC sends into are the ones that do. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAP_BYTES (2 << 20)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what) { perror(what); exit(1); }

/* Splices `n` bytes that are in the pipe to the socket. */
static void drain(int pipe_out, int sock, long n) {
    while (n > 0) {
        ssize_t k = splice(pipe_out, NULL, sock, NULL, n, SPLICE_F_MORE);
        if (k <= 0) die("splice to the socket");
        n -= k;
    }
}

static void send_file(const char *path, const char *how, long chunk, struct sockaddr_in *a) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (void *)a, sizeof *a)) die("connect");
    int direct = !strcmp(how, "direct-splice");
    int f = open(path, O_RDONLY | (direct ? O_DIRECT : 0));
    if (f < 0) die("open");
    off_t size = lseek(f, 0, SEEK_END);
    int p[2];
    if (pipe(p) || fcntl(p[1], F_SETPIPE_SZ, 1 << 20) < 0) die("pipe");
    char *buf = aligned_alloc(4096, chunk);
    loff_t off = 0;
    while (off < size) {
        if (!strcmp(how, "sendfile")) {
            if (sendfile(s, f, &off, size - off) <= 0) die("sendfile");
        } else if (!strcmp(how, "write-splice")) {
            ssize_t r = pread(f, buf, chunk, off);
            if (r <= 0 || write(p[1], buf, r) != r) die("pread or write to the pipe");
            drain(p[0], s, r);
            off += r;
        } else if (direct) {
            ssize_t r = splice(f, &off, p[1], NULL, chunk, 0);
            if (r <= 0) die("splice from the file");
            drain(p[0], s, r);
        } else {
            fprintf(stderr, "unknown sender '%s'\n", how);
            exit(2);
        }
    }
    close(s);
    exit(0);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: rx-map FILE sendfile|write-splice|direct-splice [CHUNK]\n");
        return 2;
    }
    long chunk = argc > 3 ? atol(argv[3]) : 1 << 20;
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1, lowat = 1 << 20;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof a;
    if (bind(ls, (void *)&a, sizeof a) || listen(ls, 1) || getsockname(ls, (void *)&a, &len)) die("listen");
    double t0 = now();
    if (fork() == 0) send_file(argv[1], argv[2], chunk, &a);
    int c = accept(ls, NULL, NULL);
    setsockopt(c, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
    void *map = mmap(NULL, MAP_BYTES, PROT_READ, MAP_SHARED, c, 0);
    if (map == MAP_FAILED) die("mmap of the socket");
    static char copy[MAP_BYTES];
    long mapped = 0, copied = 0, received = 0;
    for (;;) {
        struct pollfd pf = {c, POLLIN, 0};
        poll(&pf, 1, -1);
        struct tcp_zerocopy_receive z;
        memset(&z, 0, sizeof z);
        z.address = (unsigned long)map;
        z.length = MAP_BYTES;
        z.copybuf_address = (unsigned long)copy;
        z.copybuf_len = MAP_BYTES;
        socklen_t zl = sizeof z;
        if (getsockopt(c, IPPROTO_TCP, TCP_ZEROCOPY_RECEIVE, &z, &zl)) break; /* EIO: the end of the stream */
        mapped += z.length;
        if (z.copybuf_len > 0) copied += z.copybuf_len;
        if (z.length) madvise(map, z.length, MADV_DONTNEED);
        if (z.recv_skip_hint || (z.length == 0 && z.copybuf_len <= 0)) {
            ssize_t n = recv(c, copy, z.recv_skip_hint ? z.recv_skip_hint : sizeof copy, 0);
            if (n <= 0) break;
            received += n;
        }
    }
    int status;
    wait(&status);
    long total = mapped + copied + received;
    printf("%s: %.0f MB/s, %ld bytes: mapped %.3f, copied %.3f, recv %.3f\n", argv[2], total / (now() - t0) / 1e6,
           total, (double)mapped / total, (double)copied / total, (double)received / total);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

import java.io.EOFException;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSession;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * One connection and the file it sends, by one of the study's three Java paths:
 * <ul>
 *   <li>{@code jvm-transferto}: {@code FileChannel.transferTo} of one chunk per call into a {@code SocketChannel},
 *       as Kafka sends log segments (on Linux the JDK makes it one sendfile per call, or falls back; xferbench's
 *       check pass sees which);</li>
 *   <li>{@code jvm-read-write}: {@code FileInputStream.read} into a heap {@code byte[chunk]}, then the
 *       {@code OutputStream} of a {@code java.net.Socket}: plain Java IO;</li>
 *   <li>{@code jvm-nio}: {@code FileChannel.read} into a direct {@code ByteBuffer} of one chunk, then
 *       {@code SocketChannel.write};</li>
 *   <li>{@code jvm-tls}: as Kafka's {@code SslTransportLayer.transferFrom}: {@code FileChannel.read} at a position
 *       into a direct {@code ByteBuffer} of one chunk, {@code SSLEngine.wrap} into TLS 1.3 records in a heap buffer,
 *       {@code SocketChannel.write}; the handshake ({@code tls}) is made before, pinned to the sink's certificate.</li>
 * </ul>
 * Every call of the path is timed with System.nanoTime into a log-linear histogram (32 steps per power of two).
 */
final class Stream {
    /** How long a connection attempt may take, as xferbench's own senders allow. */
    private static final int CONNECT_TIMEOUT_MS = 5000;
    /** Histogram buckets: 32 per power of two up to 2^63 ns. */
    private static final int BUCKETS = 60 * 32;

    final int index;
    private final Socket socket;
    private final SocketChannel channel;
    private String method;
    private int chunk;
    private long[] groups;
    private FileChannel fileChannel;
    private FileInputStream in;
    private OutputStream out;
    private byte[] heap;
    private ByteBuffer direct;
    /** jvm-tls: the session's engine, and the records it wrapped that have not gone yet (Kafka's netWriteBuffer). */
    private SSLEngine engine;
    private ByteBuffer records;
    private boolean tlsClosed;
    /** Where the file's own position stands, for the methods that read at it. */
    private long position;


    // What the last span did.
    private long bytes;
    private long calls;
    private long firstNs;
    private long lastNs;
    private String error;
    private String errorCall;
    private long endedAt = -1;
    private final long[] hist = new long[BUCKETS];

    private Stream(int index, Socket socket, SocketChannel channel) {
        this.index = index;
        this.socket = socket;
        this.channel = channel;
    }

    static Stream connect(int index, String method, String host, int port) throws IOException {
        InetSocketAddress to = new InetSocketAddress(host, port);
        if (method.equals("jvm-read-write")) {
            Socket s = new Socket();
            s.connect(to, CONNECT_TIMEOUT_MS);
            return new Stream(index, s, null);
        }
        SocketChannel c = SocketChannel.open();
        c.socket().connect(to, CONNECT_TIMEOUT_MS);
        return new Stream(index, null, c);
    }

    int localPort() {
        return socket != null ? socket.getLocalPort() : channel.socket().getLocalPort();
    }

    /** The file, the buffer and the ranges: everything that is set-up, before the timed section. */
    void prepare(Path file, String method, int chunk, long[] groups) throws IOException {
        this.method = method;
        this.chunk = chunk;
        this.groups = groups;
        closeFile();
        position = 0;
        switch (method) {
            case "jvm-transferto":
                fileChannel = FileChannel.open(file, StandardOpenOption.READ);
                break;
            case "jvm-read-write":
                in = new FileInputStream(file.toFile());
                out = socket.getOutputStream();
                heap = new byte[chunk];
                break;
            case "jvm-nio":
            case "jvm-tls":
                fileChannel = FileChannel.open(file, StandardOpenOption.READ);
                direct = ByteBuffer.allocateDirect(chunk);
                break;
            default:
                throw new IllegalArgumentException("unknown method '" + method + "'");
        }
    }

    /** The calling thread's kernel id (0 where /proc/thread-self cannot tell), for xferbench to read its counters. */
    static long ownTid() {
        try {
            String self = Files.readSymbolicLink(Paths.get("/proc/thread-self")).toString();
            return Long.parseLong(self.substring(self.lastIndexOf('/') + 1));
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    /**
     * Sends every range `passes` times, then, with `end` (the stream's last span), ends a TLS session; a failure is
     * kept for the reply, never thrown.
     */
    void send(int passes, boolean end) {
        reset();
        try {
            for (int pass = 0; pass < passes; pass++) {
                for (int g = 0; g + 3 < groups.length; g += 4) {
                    for (long k = 0; k < groups[g + 3]; k++) {
                        long start = groups[g] + k * groups[g + 2];
                        sendRange(start, start + groups[g + 1]);
                    }
                }
            }
            if (end) {
                end();
            }
        } catch (EOFException e) {
            error = e.getMessage();
            errorCall = "eof";
        } catch (IOException | RuntimeException e) {
            error = e.getMessage() != null ? e.getMessage() : e.toString();
        }
    }

    /** Forgets what the last span did. */
    private void reset() {
        bytes = 0;
        calls = 0;
        firstNs = 0;
        lastNs = 0;
        error = null;
        errorCall = null;
        endedAt = -1;
        java.util.Arrays.fill(hist, 0);
    }

    // A broker's consumer (broker-jvm-transferto): served by a network thread whenever its socket is writable.

    /** What a visit came to: a fetch went (on to the next ready consumer), the socket is full, or all went. */
    static final int MOVED = 0;
    static final int BLOCKED = 1;
    static final int DONE = 2;

    private int passesLeft;
    /** The range being sent (groups expanded: group g's k-th range), and where in it. */
    private int group;
    private long inGroup;
    private long rangeEnd;
    private long fetchBytes;
    private long fetchLeft;

    SocketChannel channel() {
        return channel;
    }

    /** Ready to be served `passes` passes of its ranges, in fetches of at most `fetch` bytes. */
    void startConsumer(int passes, long fetch) {
        reset();
        errorCall = "transferTo";
        passesLeft = passes;
        fetchBytes = fetch;
        fetchLeft = fetch;
        group = -1;
        rangeEnd = 0;
        position = 0;
        nextRange();
        if (engine != null) {
            errorCall = "read";
            direct.clear();
            direct.limit(0);
        }
    }

    /** On to the next range of this pass (false when the pass has none left; `position` is then its end). */
    private boolean nextRange() {
        if (group >= 0 && inGroup + 1 < groups[group + 3]) {
            inGroup++;
        } else {
            group = group < 0 ? 0 : group + 4;
            inGroup = 0;
            while (group + 3 < groups.length && groups[group + 3] == 0) {
                group += 4;
            }
            if (group + 3 >= groups.length) {
                return false;
            }
        }
        position = groups[group] + inGroup * groups[group + 2];
        rangeEnd = position + groups[group + 1];
        return true;
    }

    /**
     * One visit while the socket is writable, as a Kafka network thread serves a fetch response: transferTo of what
     * is left of the fetch, again until the fetch has gone or the socket takes nothing more. A fetch never runs
     * across the end of a range (for a broker, the end of the file).
     */
    int visit() throws IOException {
        if (engine != null) {
            return visitTls();
        }
        while (true) {
            if (position == rangeEnd) {
                int at = rangeDone();
                if (at >= 0) {
                    return at;
                }
            }
            long len = Math.min(fetchLeft, rangeEnd - position);
            long t0 = System.nanoTime();
            long n = fileChannel.transferTo(position, len, channel);
            record(t0);
            if (n <= 0) {
                if (position >= fileChannel.size()) {
                    endedAt = position;
                    throw new EOFException("the file ended early at offset " + position);
                }
                return BLOCKED;
            }
            position += n;
            bytes += n;
            fetchLeft -= n;
            if (fetchLeft == 0) {
                fetchLeft = fetchBytes;
                if (position < rangeEnd) {
                    return MOVED;
                }
            }
        }
    }

    /** At the end of a range: on to the next (-1: go on), or the pass is whole (MOVED, or DONE after the last). */
    private int rangeDone() {
        fetchLeft = fetchBytes;
        if (nextRange()) {
            return -1;
        }
        passesLeft--;
        if (passesLeft == 0) {
            return DONE;
        }
        group = -1;
        nextRange();
        return MOVED;
    }

    /**
     * A visit of jvm-tls, as Kafka's {@code SslTransportLayer.transferFrom} serves a fetch: records a full socket
     * left behind go first; then the file is read at the consumer's position into the direct buffer (at most one
     * chunk, never past the fetch), sealed record by record and written, until the fetch has gone (its last record
     * too) or the socket takes nothing more; what it did not take waits for the next visit.
     */
    private int visitTls() throws IOException {
        while (true) {
            if (records.hasRemaining()) {
                errorCall = "write";
                long t0 = System.nanoTime();
                channel.write(records);
                record(t0);
                if (records.hasRemaining()) {
                    return BLOCKED;
                }
                if (fetchLeft == 0) {
                    fetchLeft = fetchBytes;
                    if (position < rangeEnd) {
                        return MOVED;
                    }
                }
                continue;
            }
            if (position == rangeEnd) {
                int at = rangeDone();
                if (at >= 0) {
                    return at;
                }
            }
            if (!direct.hasRemaining()) {
                int len = (int) Math.min(direct.capacity(), Math.min(fetchLeft, rangeEnd - position));
                direct.clear();
                direct.limit(len);
                errorCall = "read";
                long t0 = System.nanoTime();
                int n = fileChannel.read(direct, position);
                record(t0);
                if (n <= 0) {
                    endedAt = position;
                    throw new EOFException("the file ended early at offset " + position);
                }
                direct.flip();
            }
            int took = wrap();
            position += took;
            bytes += took;
            fetchLeft -= took;
        }
    }

    /** A failure of this consumer, kept for the reply. */
    void failed(Exception e) {
        if (e instanceof EOFException) {
            errorCall = "eof";
        }
        error = e.getMessage() != null ? e.getMessage() : e.toString();
    }

    /** One range in pieces of at most one chunk, each piece until all of it went. */
    private void sendRange(long start, long end) throws IOException {
        for (long piece = start; piece < end; piece += chunk) {
            long pieceEnd = Math.min(piece + chunk, end);
            for (long at = piece; at < pieceEnd; ) {
                long n = sendPiece(at, (int) (pieceEnd - at));
                if (n <= 0) {
                    endedAt = at;
                    throw new EOFException("the file ended early at offset " + at);
                }
                at += n;
                bytes += n;
            }
        }
    }

    /** Moves file bytes at..at+len towards the socket; returns how many went (0: the file ended). */
    private long sendPiece(long at, int len) throws IOException {
        switch (method) {
            case "jvm-transferto": {
                errorCall = "transferTo";
                long t0 = System.nanoTime();
                long n = fileChannel.transferTo(at, len, channel);
                record(t0);
                return n;
            }
            case "jvm-read-write":
                return readWrite(at, len);
            case "jvm-tls":
                return tlsPiece(at, len);
            default:
                return nio(at, len);
        }
    }

    private long readWrite(long at, int len) throws IOException {
        if (position != at) {
            in.getChannel().position(at);
            position = at;
        }
        errorCall = "read";
        int got = 0;
        while (got < len) {
            long t0 = System.nanoTime();
            int n = in.read(heap, got, len - got);
            record(t0);
            if (n < 0) {
                break;
            }
            got += n;
        }
        position += got;
        if (got > 0) {
            errorCall = "write";
            long t0 = System.nanoTime();
            out.write(heap, 0, got);
            record(t0);
        }
        return got;
    }

    private long nio(long at, int len) throws IOException {
        if (position != at) {
            fileChannel.position(at);
            position = at;
        }
        direct.clear();
        direct.limit(len);
        errorCall = "read";
        while (direct.hasRemaining()) {
            long t0 = System.nanoTime();
            int n = fileChannel.read(direct);
            record(t0);
            if (n < 0) {
                break;
            }
        }
        direct.flip();
        int got = direct.remaining();
        position += got;
        errorCall = "write";
        while (direct.hasRemaining()) {
            long t0 = System.nanoTime();
            channel.write(direct);
            record(t0);
        }
        return got;
    }

    private long tlsPiece(long at, int len) throws IOException {
        direct.clear();
        direct.limit(len);
        errorCall = "read";
        while (direct.hasRemaining()) {
            long t0 = System.nanoTime();
            int n = fileChannel.read(direct, at + direct.position());
            record(t0);
            if (n < 0) {
                break;
            }
        }
        direct.flip();
        int got = direct.remaining();
        while (direct.hasRemaining()) {
            wrap();
            flushRecords();
        }
        return got;
    }

    /** Seals the next record (at most 16 KiB of `direct`) into `records`; returns the plaintext bytes it took. */
    private int wrap() throws SSLException {
        errorCall = "wrap";
        records.clear();
        SSLEngineResult r = engine.wrap(direct, records);
        records.flip();
        if (r.getStatus() != SSLEngineResult.Status.OK) {
            throw new SSLException("TLS: SSLEngine.wrap said " + r.getStatus());
        }
        return r.bytesConsumed();
    }

    /** Writes every pending record, blocking. */
    private void flushRecords() throws IOException {
        errorCall = "write";
        while (records.hasRemaining()) {
            long t0 = System.nanoTime();
            channel.write(records);
            record(t0);
        }
    }

    /** The TLS session's end, once its last bytes have gone: close_notify, written blocking. */
    void end() throws IOException {
        if (engine == null || tlsClosed) {
            return;
        }
        tlsClosed = true;
        engine.closeOutbound();
        records.clear();
        engine.wrap(ByteBuffer.allocate(0), records);
        records.flip();
        flushRecords();
    }

    /**
     * The TLS handshake over this (blocking) connection, in the JVM's own engine: TLS 1.3 as a client, the sink's
     * certificate trusted only if its SHA-256 is `pin` (what the sink's ack announced). Returns what it negotiated.
     */
    String tls(String pin) throws IOException {
        try {
            SSLContext context = SSLContext.getInstance("TLSv1.3");
            context.init(null, new TrustManager[] {new Pinned(pin)}, null);
            engine = context.createSSLEngine();
            engine.setUseClientMode(true);
            engine.setEnabledProtocols(new String[] {"TLSv1.3"});
            SSLSession session = engine.getSession();
            records = ByteBuffer.allocate(session.getPacketBufferSize());
            ByteBuffer in = ByteBuffer.allocate(session.getPacketBufferSize());
            ByteBuffer app = ByteBuffer.allocate(session.getApplicationBufferSize());
            ByteBuffer none = ByteBuffer.allocate(0);
            tlsClosed = false;
            engine.beginHandshake();
            SSLEngineResult.HandshakeStatus hs = engine.getHandshakeStatus();
            while (hs != SSLEngineResult.HandshakeStatus.FINISHED
                    && hs != SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING) {
                switch (hs) {
                    case NEED_WRAP: {
                        records.clear();
                        SSLEngineResult r = engine.wrap(none, records);
                        records.flip();
                        while (records.hasRemaining()) {
                            channel.write(records);
                        }
                        hs = r.getHandshakeStatus();
                        break;
                    }
                    case NEED_TASK: {
                        Runnable task;
                        while ((task = engine.getDelegatedTask()) != null) {
                            task.run();
                        }
                        hs = engine.getHandshakeStatus();
                        break;
                    }
                    default: {
                        in.flip();
                        SSLEngineResult r = engine.unwrap(in, app);
                        in.compact();
                        if (r.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW) {
                            if (channel.read(in) < 0) {
                                throw new EOFException("the sink closed the connection mid-handshake");
                            }
                        } else if (r.getStatus() != SSLEngineResult.Status.OK) {
                            throw new SSLException("SSLEngine.unwrap said " + r.getStatus());
                        }
                        hs = r.getHandshakeStatus();
                        break;
                    }
                }
            }
            // The sink sends nothing after its Finished (no tickets): nothing may be left unread.
            if (in.position() != 0 || app.position() != 0) {
                throw new SSLException("the sink sent data after its handshake");
            }
            records.clear();
            records.limit(0);
            SSLSession done = engine.getSession();
            return "{\"ok\":true,\"cipher\":" + Json.text(done.getCipherSuite()) + ",\"protocol\":"
                    + Json.text(done.getProtocol()) + "}";
        } catch (java.security.GeneralSecurityException | IOException e) {
            throw new IOException("TLS handshake (the JVM) failed: " + e.getMessage(), e);
        }
    }

    /** Trusts one certificate: the one whose SHA-256 the sink's ack announced; no name is checked. */
    private static final class Pinned extends X509ExtendedTrustManager {
        private final String pin;

        Pinned(String pin) {
            this.pin = pin;
        }

        private void check(X509Certificate[] chain) throws CertificateException {
            if (chain == null || chain.length == 0) {
                throw new CertificateException("the sink presented no certificate");
            }
            byte[] digest;
            try {
                digest = MessageDigest.getInstance("SHA-256").digest(chain[0].getEncoded());
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new CertificateException(e);
            }
            StringBuilder hex = new StringBuilder();
            for (byte b : digest) {
                hex.append(String.format("%02x", b & 0xff));
            }
            if (!hex.toString().equals(pin)) {
                throw new CertificateException(
                        "the sink's certificate has fingerprint " + hex + " but its ack announced " + pin);
            }
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            check(chain);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            check(chain);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            check(chain);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            throw new CertificateException("the JVM sender is never a TLS server");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            throw new CertificateException("the JVM sender is never a TLS server");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            throw new CertificateException("the JVM sender is never a TLS server");
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }

    /** Times the call that began at t0: counted, bucketed, and the span's first call and last return kept. */
    private void record(long t0) {
        long t1 = System.nanoTime();
        if (calls++ == 0) {
            firstNs = t0;
        }
        lastNs = t1;
        hist[bucket(Math.max(1, t1 - t0))]++;
    }

    /** Values under 32 ns exactly; above, 32 steps per power of two (about 3%). */
    static int bucket(long ns) {
        if (ns < 32) {
            return (int) ns;
        }
        int e = 63 - Long.numberOfLeadingZeros(ns);
        int m = (int) ((ns >>> (e - 5)) & 31);
        return (e - 4) * 32 + m;
    }

    /** The last span as JSON. */
    String result() {
        StringBuilder h = new StringBuilder();
        for (int b = 0; b < hist.length; b++) {
            if (hist[b] != 0) {
                h.append(h.length() == 0 ? "" : ",").append('[').append(b).append(',').append(hist[b]).append(']');
            }
        }
        return "{\"bytes\":" + bytes + ",\"calls\":" + calls + ",\"first_ns\":" + firstNs
                + ",\"last_ns\":" + lastNs + ",\"hist\":[" + h + "],\"error\":" + Json.text(error)
                + ",\"error_call\":" + Json.text(error == null ? null : errorCall)
                + ",\"ended_at\":" + (endedAt < 0 ? "null" : Long.toString(endedAt)) + "}";
    }

    private void closeFile() throws IOException {
        if (fileChannel != null) {
            fileChannel.close();
            fileChannel = null;
        }
        if (in != null) {
            in.close();
            in = null;
        }
    }

    void close() {
        try {
            closeFile();
        } catch (IOException e) {
            // Closing a read-only file cannot lose anything.
        }
        try {
            if (socket != null) {
                socket.close();
            } else {
                channel.close();
            }
        } catch (IOException e) {
            // The connection's end is xferbench's to judge, through its own copy of the socket.
        }
    }
}

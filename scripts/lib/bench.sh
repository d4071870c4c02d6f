# Shared by the benches that put xferbench beside the bare C loop (bench/bare.c). Source it; it defines:
#   size_bytes TEXT   -> bytes of a size such as 10MiB or 1.2GB (decimal and binary suffixes, as xferbench reads them)
#   bare MODE         -> MB/s of one bare C transfer of "$file" in "$chunk"-byte calls (MODE: sendfile or read),
#                        from the sender's first call to the receiver's last byte; the receiver reads into 128 KiB.
#                        Needs "$work/bare" built from bench/bare.c.

size_bytes() {
    python3 -c "
import re,sys
s=sys.argv[1]; m=re.fullmatch(r'([0-9.]+)\s*([KMG]?)(i?)B?', s, re.I)
print(int(float(m[1]) * (1024 if m[3] else 1000) ** ' KMG'.index((m[2] or ' ').upper())))" "$1"
}

bare() {
    local port=$((20000 + RANDOM % 20000)) r s
    coproc RECV { "$work/bare" recv "$port" 131072; }
    read -r _ <&"${RECV[0]}"
    s=$("$work/bare" send "$port" "$file" "$1" "$chunk")
    read -r r <&"${RECV[0]}"
    wait "$RECV_PID" 2>/dev/null || true
    # "send BYTES START_NS END_NS" and "recv BYTES FIRST_NS LAST_NS".
    python3 -c "s='$s'.split(); r='$r'.split(); print(round(int(r[1]) / 1e6 / ((int(r[3]) - int(s[2])) / 1e9)))"
}

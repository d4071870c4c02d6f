//! Kernel TLS for the sender (`ktls-sendfile`): after the rustls handshake, the transmit keys go to the kernel
//! (`setsockopt(SOL_TCP, TCP_ULP, "tls")`, then `setsockopt(SOL_TLS, TLS_TX, tls12_crypto_info_*)`), and from then
//! on whatever is written to the socket, `sendfile` included, leaves as TLS 1.3 records sealed by the kernel.
//! Only the transmit direction moves: the sink's report comes back in plaintext, outside TLS, and reads of the
//! socket stay plain TCP.
//!
//! Every constant and struct is `libc`'s copy of the kernel's uapi header `include/uapi/linux/tls.h` (and
//! `TCP_ULP` of `include/uapi/linux/tcp.h`); the fill follows `Documentation/networking/tls.rst`. For TLS 1.3 the
//! kernel builds each record's nonce as `salt || iv` (AES-GCM: 4 + 8 bytes; ChaCha20-Poly1305: no salt, 12 bytes
//! of iv) and XORs the 8-byte big-endian record sequence number, which starts at `rec_seq`, into its last 8 bytes
//! (RFC 8446 §5.3). [`RecordSealer`] does exactly that in user space from the same bytes, which is how the tests
//! check the packing against rustls on machines whose kernel has no `tls` ULP, and how the sender still sends
//! once the keys have left rustls but the kernel refused them.

use super::{Sealer, suite_name};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::{ClientConnection, ConnectionTrafficSecrets, ProtocolVersion};
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

/// Where the kernel lists the ULPs it has registered (loaded), space-separated.
const AVAILABLE_ULP: &str = "/proc/sys/net/ipv4/tcp_available_ulp";

/// Whether the kernel lists a `tls` ULP now. `false` is not the last word: a process with CAP_NET_ADMIN makes the
/// kernel load `tls.ko` on its first `TCP_ULP "tls"` (the module alias `tcp-ulp-tls`), so [`ktls_tx`] always tries.
pub fn ulp_available() -> bool {
    std::fs::read_to_string(AVAILABLE_ULP).is_ok_and(|list| list.split_whitespace().any(|ulp| ulp == "tls"))
}

/// TLS_TX's argument, `struct tls12_crypto_info_*` of `linux/tls.h` ("tls12" in the name, TLS 1.3 in `version`):
/// one variant per AEAD that both rustls (ring) negotiates and the kernel takes for TLS 1.3.
pub(crate) enum CryptoInfo {
    Aes128Gcm(libc::tls12_crypto_info_aes_gcm_128),
    Aes256Gcm(libc::tls12_crypto_info_aes_gcm_256),
    Chacha20Poly1305(libc::tls12_crypto_info_chacha20_poly1305),
}

// The structs are `__u16 version, __u16 cipher_type` then byte arrays: no padding, so every byte is initialized
// and `as_bytes` is the struct exactly as the kernel's `copy_from_sockptr` reads it.
const _: () = assert!(size_of::<libc::tls12_crypto_info_aes_gcm_128>() == 2 + 2 + 8 + 16 + 4 + 8);
const _: () = assert!(size_of::<libc::tls12_crypto_info_aes_gcm_256>() == 2 + 2 + 8 + 32 + 4 + 8);
const _: () = assert!(size_of::<libc::tls12_crypto_info_chacha20_poly1305>() == 2 + 2 + 12 + 32 + 8);

/// The AEADs of [`CryptoInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl CryptoInfo {
    /// Packs one direction's secrets, as rustls extracted them, with that direction's next sequence number.
    pub(crate) fn from_secrets(seq: u64, secrets: &ConnectionTrafficSecrets) -> Result<CryptoInfo, String> {
        let (aead, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Aead::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Aead::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (Aead::Chacha20Poly1305, key, iv),
            _ => return Err("rustls negotiated an AEAD this code does not hand to the kernel".into()),
        };
        CryptoInfo::pack(aead, key.as_ref(), iv.as_ref(), seq)
    }

    /// `key` and the 12-byte TLS 1.3 write IV (RFC 8446 §7.3) of `aead`, and the next record's sequence number.
    pub(crate) fn pack(aead: Aead, key: &[u8], iv: &[u8], seq: u64) -> Result<CryptoInfo, String> {
        let iv: &[u8; 12] = iv
            .try_into()
            .map_err(|_| format!("a {aead:?} IV of {} bytes, not 12", iv.len()))?;
        let wrong_key = |_| format!("a {aead:?} key of {} bytes", key.len());
        Ok(match aead {
            Aead::Aes128Gcm => CryptoInfo::Aes128Gcm(libc::tls12_crypto_info_aes_gcm_128 {
                info: libc::tls_crypto_info {
                    version: libc::TLS_1_3_VERSION,            // 0x0304
                    cipher_type: libc::TLS_CIPHER_AES_GCM_128, // 51
                },
                iv: iv[4..].try_into().expect("8 bytes"), // TLS_CIPHER_AES_GCM_128_IV_SIZE (8): the IV's last 8
                key: key.try_into().map_err(wrong_key)?,  // TLS_CIPHER_AES_GCM_128_KEY_SIZE (16)
                salt: iv[..4].try_into().expect("4 bytes"), // TLS_CIPHER_AES_GCM_128_SALT_SIZE (4): its first 4
                rec_seq: seq.to_be_bytes(),               // TLS_CIPHER_AES_GCM_128_REC_SEQ_SIZE (8), big-endian
            }),
            Aead::Aes256Gcm => CryptoInfo::Aes256Gcm(libc::tls12_crypto_info_aes_gcm_256 {
                info: libc::tls_crypto_info {
                    version: libc::TLS_1_3_VERSION,            // 0x0304
                    cipher_type: libc::TLS_CIPHER_AES_GCM_256, // 52
                },
                iv: iv[4..].try_into().expect("8 bytes"), // TLS_CIPHER_AES_GCM_256_IV_SIZE (8): the IV's last 8
                key: key.try_into().map_err(wrong_key)?,  // TLS_CIPHER_AES_GCM_256_KEY_SIZE (32)
                salt: iv[..4].try_into().expect("4 bytes"), // TLS_CIPHER_AES_GCM_256_SALT_SIZE (4): its first 4
                rec_seq: seq.to_be_bytes(),               // TLS_CIPHER_AES_GCM_256_REC_SEQ_SIZE (8), big-endian
            }),
            Aead::Chacha20Poly1305 => CryptoInfo::Chacha20Poly1305(libc::tls12_crypto_info_chacha20_poly1305 {
                info: libc::tls_crypto_info {
                    version: libc::TLS_1_3_VERSION,                  // 0x0304
                    cipher_type: libc::TLS_CIPHER_CHACHA20_POLY1305, // 54
                },
                iv: *iv, // TLS_CIPHER_CHACHA20_POLY1305_IV_SIZE (12): the whole IV
                key: key.try_into().map_err(wrong_key)?, // TLS_CIPHER_CHACHA20_POLY1305_KEY_SIZE (32)
                salt: [], // TLS_CIPHER_CHACHA20_POLY1305_SALT_SIZE (0)
                rec_seq: seq.to_be_bytes(), // TLS_CIPHER_CHACHA20_POLY1305_REC_SEQ_SIZE (8), big-endian
            }),
        })
    }

    /// The struct's bytes, as `setsockopt` passes them.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        fn bytes_of<T>(value: &T) -> &[u8] {
            // SAFETY: `T` is one of the three padding-free `repr(C)` structs above (sizes asserted), so all
            // `size_of::<T>()` bytes behind the reference are initialized, and they live as long as the borrow.
            unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
        }
        match self {
            CryptoInfo::Aes128Gcm(info) => bytes_of(info),
            CryptoInfo::Aes256Gcm(info) => bytes_of(info),
            CryptoInfo::Chacha20Poly1305(info) => bytes_of(info),
        }
    }
}

/// TLS 1.3 record sealing as the kernel does it from a [`CryptoInfo`]: the same key, nonce and sequence numbers,
/// records of at most 16 KiB of plaintext (`TLS_MAX_PAYLOAD_SIZE`), no padding.
pub(crate) struct RecordSealer {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    suite: &'static str,
}

/// RFC 8446 §5.1: at most 2^14 bytes of plaintext a record.
const MAX_PLAINTEXT: usize = 16 * 1024;
/// RFC 8446 §5.1 ContentType values.
const CONTENT_ALERT: u8 = 21;
const CONTENT_APPLICATION_DATA: u8 = 23;
/// RFC 8446 §6: a close_notify alert (level warning = 1, description close_notify = 0).
const CLOSE_NOTIFY: [u8; 2] = [1, 0];

impl RecordSealer {
    pub(crate) fn new(info: &CryptoInfo) -> RecordSealer {
        let (alg, key, iv, rec_seq, suite): (_, &[u8], [u8; 12], _, _) = match info {
            CryptoInfo::Aes128Gcm(i) => (
                &ring::aead::AES_128_GCM,
                &i.key,
                concat_iv(&i.salt, &i.iv),
                i.rec_seq,
                "TLS13_AES_128_GCM_SHA256",
            ),
            CryptoInfo::Aes256Gcm(i) => (
                &ring::aead::AES_256_GCM,
                &i.key,
                concat_iv(&i.salt, &i.iv),
                i.rec_seq,
                "TLS13_AES_256_GCM_SHA384",
            ),
            CryptoInfo::Chacha20Poly1305(i) => (
                &ring::aead::CHACHA20_POLY1305,
                &i.key,
                i.iv,
                i.rec_seq,
                "TLS13_CHACHA20_POLY1305_SHA256",
            ),
        };
        let key = LessSafeKey::new(UnboundKey::new(alg, key).expect("key length matches the algorithm"));
        RecordSealer {
            key,
            iv,
            seq: u64::from_be_bytes(rec_seq),
            suite,
        }
    }

    pub(crate) fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> anyhow::Result<()> {
        for fragment in plaintext.chunks(MAX_PLAINTEXT) {
            self.record(CONTENT_APPLICATION_DATA, fragment, out)?;
        }
        Ok(())
    }

    pub(crate) fn close(&mut self, out: &mut Vec<u8>) -> anyhow::Result<()> {
        self.record(CONTENT_ALERT, &CLOSE_NOTIFY, out)
    }

    pub(crate) fn cipher_suite(&self) -> String {
        self.suite.to_owned()
    }

    /// One TLSCiphertext (RFC 8446 §5.2): header, then AEAD(TLSInnerPlaintext = data || content type) || tag.
    fn record(&mut self, content_type: u8, data: &[u8], out: &mut Vec<u8>) -> anyhow::Result<()> {
        let tag_len = self.key.algorithm().tag_len();
        let len = u16::try_from(data.len() + 1 + tag_len).expect("a record is under 64 KiB");
        // opaque_type = application_data, legacy_record_version = 0x0303, length; the header is the AAD.
        let header = [CONTENT_APPLICATION_DATA, 0x03, 0x03, (len >> 8) as u8, len as u8];
        // §5.3: the per-record nonce is the IV XOR the sequence number, big-endian, left-padded to 12 bytes.
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        out.extend_from_slice(&header);
        let start = out.len();
        out.extend_from_slice(data);
        out.push(content_type);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut out[start..],
            )
            .map_err(|_| anyhow::anyhow!("TLS: sealing a record failed"))?;
        out.extend_from_slice(tag.as_ref());
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or_else(|| anyhow::anyhow!("TLS: record sequence number exhausted"))?;
        Ok(())
    }
}

fn concat_iv(salt: &[u8; 4], iv: &[u8; 8]) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..4].copy_from_slice(salt);
    out[4..].copy_from_slice(iv);
    out
}

/// The socket now seals in the kernel: write plaintext (or `sendfile` a file) to it, then [`close_notify`](Self::close_notify).
#[derive(Debug)]
pub struct Ktls {
    suite: String,
}

/// The kernel would not take the keys. `fallback` sends the same session in user space: the connection itself
/// when the refusal came before the keys left rustls (no ULP, a suite the kernel lacks), else a sealer on the
/// extracted keys (TLS_TX refused); either way the socket still carries plain TCP.
pub struct KtlsRefused {
    /// One line for the run's notes, naming the cause ("the kernel has no tls ULP …").
    pub reason: String,
    pub fallback: Sealer,
}

impl std::fmt::Debug for KtlsRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KtlsRefused")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl Ktls {
    /// The negotiated suite ("TLS13_AES_256_GCM_SHA384"), for the `tls_cipher` column.
    pub fn cipher_suite(&self) -> String {
        self.suite.clone()
    }

    /// Sends close_notify through the kernel: a 2-byte message whose control message asks for a record of type
    /// alert (`linux/tls.h`: cmsg level SOL_TLS, type TLS_SET_RECORD_TYPE, one byte of content type).
    pub fn close_notify(&self, sock: &TcpStream) -> io::Result<()> {
        let mut iov = libc::iovec {
            iov_base: CLOSE_NOTIFY.as_ptr() as *mut libc::c_void,
            iov_len: CLOSE_NOTIFY.len(),
        };
        // Room for one cmsghdr and one byte of data, aligned as cmsghdr wants (u64).
        let mut control = [0u64; 4];
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(1) } as usize;
        assert!(space <= size_of_val(&control));
        // SAFETY: msghdr is plain data; all-zero is a valid empty message.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `space` writable, aligned bytes, so CMSG_FIRSTHDR is that buffer's start
        // and its header and one data byte fit; every pointer stays valid through the sendmsg call.
        let sent = unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_TLS;
            (*cmsg).cmsg_type = libc::TLS_SET_RECORD_TYPE;
            (*cmsg).cmsg_len = libc::CMSG_LEN(1) as _;
            *libc::CMSG_DATA(cmsg) = CONTENT_ALERT;
            libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
        };
        match sent {
            -1 => Err(io::Error::last_os_error()),
            2 => Ok(()),
            n => Err(io::Error::other(format!(
                "kTLS close_notify: sendmsg took {n} of 2 bytes"
            ))),
        }
    }
}

/// Hands the session's transmit keys to the kernel. `Ok(Ok(_))`: the socket encrypts from now on.
/// `Ok(Err(refused))`: the kernel cannot or will not; send through `refused.fallback` and record `refused.reason`.
/// `Err(_)`: the connection is not fit for it at all (handshake unfinished, records unsent, secret extraction off:
/// use a config from [`client_config`](super::client_config)); there is nothing to fall back on.
///
/// In order: the suite must be a TLS 1.3 one the kernel knows; `TCP_ULP "tls"` must take (`ENOENT`: no such
/// module); then rustls gives up the keys, and `TLS_TX` must take them.
pub fn ktls_tx(sock: &TcpStream, conn: ClientConnection) -> anyhow::Result<Result<Ktls, KtlsRefused>> {
    if conn.is_handshaking() || conn.wants_write() {
        anyhow::bail!("kTLS: the TLS handshake is not finished and flushed");
    }
    let suite = suite_name(conn.negotiated_cipher_suite());
    let refuse = |reason: String, conn| {
        Ok(Err(KtlsRefused {
            reason,
            fallback: Sealer::new(conn),
        }))
    };
    if conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        return refuse(
            format!("kTLS: the session is {:?}, not TLS 1.3", conn.protocol_version()),
            conn,
        );
    }
    if !matches!(
        suite.as_str(),
        "TLS13_AES_128_GCM_SHA256" | "TLS13_AES_256_GCM_SHA384" | "TLS13_CHACHA20_POLY1305_SHA256"
    ) {
        return refuse(format!("kTLS: the kernel takes no {suite}"), conn);
    }

    // `Documentation/networking/tls.rst`: setsockopt(sock, SOL_TCP, TCP_ULP, "tls", sizeof("tls")). The socket
    // must be connected (ENOTCONN otherwise); with the ULP on but no TLS_TX set, it still sends plain TCP.
    const ULP: &[u8] = b"tls\0";
    // SAFETY: a valid fd and a pointer to ULP.len() readable bytes.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_ULP,
            ULP.as_ptr().cast(),
            ULP.len() as _,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        let reason = if err.raw_os_error() == Some(libc::ENOENT) {
            let listed = std::fs::read_to_string(AVAILABLE_ULP).unwrap_or_default();
            format!(
                "kTLS: the kernel has no tls ULP (setsockopt TCP_ULP \"tls\": ENOENT; tcp_available_ulp lists {:?})",
                listed.trim()
            )
        } else {
            format!("kTLS: setsockopt TCP_ULP \"tls\" refused: {err}")
        };
        return refuse(reason, conn);
    }

    // From here rustls no longer holds the session: a refusal falls back on a RecordSealer with the same keys.
    let secrets = conn
        .dangerous_extract_secrets()
        .map_err(|e| anyhow::anyhow!("kTLS: extracting the keys: {e}"))?;
    let (seq, tx) = secrets.tx;
    let info = CryptoInfo::from_secrets(seq, &tx).map_err(|e| anyhow::anyhow!("kTLS: {e}"))?;
    let bytes = info.as_bytes();
    // setsockopt(sock, SOL_TLS, TLS_TX, &crypto_info, sizeof(crypto_info)).
    // SAFETY: a valid fd and a pointer to bytes.len() readable bytes.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_TLS,
            libc::TLS_TX,
            bytes.as_ptr().cast(),
            bytes.len() as _,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Ok(Err(KtlsRefused {
            reason: format!("kTLS: setsockopt TLS_TX refused TLS 1.3 {suite}: {err}"),
            fallback: Sealer::from_records(RecordSealer::new(&info)),
        }));
    }
    Ok(Ok(Ktls { suite }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IV: [u8; 12] = [0xa0, 0xa1, 0xa2, 0xa3, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7];

    /// 0x10, 0x11, … : `len` bytes.
    fn key(len: usize) -> Vec<u8> {
        (0x10..0x10 + len as u8).collect()
    }

    const SEQ: u64 = 0x0102_0304_0506_0708;

    /// `version` and `cipher_type` are host-endian `__u16`s.
    fn head(cipher: u16) -> Vec<u8> {
        [0x0304u16.to_ne_bytes(), cipher.to_ne_bytes()].concat()
    }

    #[test]
    fn aes_128_gcm_packing() {
        let info = CryptoInfo::pack(Aead::Aes128Gcm, &key(16), &IV, SEQ).unwrap();
        let mut want = head(51);
        want.extend([0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7]); // iv: the last 8 of the 12
        want.extend(0x10..0x20u8); // key
        want.extend([0xa0, 0xa1, 0xa2, 0xa3]); // salt: the first 4
        want.extend([1, 2, 3, 4, 5, 6, 7, 8]); // rec_seq, big-endian
        assert_eq!(info.as_bytes(), want);
        assert_eq!(want.len(), 40);
    }

    #[test]
    fn aes_256_gcm_packing() {
        let info = CryptoInfo::pack(Aead::Aes256Gcm, &key(32), &IV, SEQ).unwrap();
        let mut want = head(52);
        want.extend([0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7]);
        want.extend(0x10..0x30u8);
        want.extend([0xa0, 0xa1, 0xa2, 0xa3]);
        want.extend([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(info.as_bytes(), want);
        assert_eq!(want.len(), 56);
    }

    #[test]
    fn chacha20_poly1305_packing() {
        let info = CryptoInfo::pack(Aead::Chacha20Poly1305, &key(32), &IV, SEQ).unwrap();
        let mut want = head(54);
        want.extend([0xa0, 0xa1, 0xa2, 0xa3, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7]); // iv: all 12
        want.extend(0x10..0x30u8); // key; no salt
        want.extend([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(info.as_bytes(), want);
        assert_eq!(want.len(), 56);
    }

    #[test]
    fn record_sealer_nonce_and_sequence() {
        // The second record's nonce is the IV with 1 XORed into its last byte; check by opening both with ring.
        let info = CryptoInfo::pack(Aead::Aes128Gcm, &key(16), &IV, 0).unwrap();
        let mut sealer = RecordSealer::new(&info);
        let mut out = Vec::new();
        sealer.seal(&[7u8; MAX_PLAINTEXT + 10], &mut out).unwrap();
        assert_eq!(out.len(), 2 * 5 + MAX_PLAINTEXT + 10 + 2 * (1 + 16));
        let opener = LessSafeKey::new(UnboundKey::new(&ring::aead::AES_128_GCM, &key(16)).unwrap());
        let mut at = 0;
        for seq in 0u64..2 {
            let len = u16::from_be_bytes([out[at + 3], out[at + 4]]) as usize;
            let header: [u8; 5] = out[at..at + 5].try_into().unwrap();
            assert_eq!(&header[..3], &[23, 3, 3]);
            let mut nonce = IV;
            nonce[11] ^= seq as u8;
            let mut record = out[at + 5..at + 5 + len].to_vec();
            let plain = opener
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(header), &mut record)
                .expect("opens with the IV XOR seq");
            assert_eq!(plain.last(), Some(&CONTENT_APPLICATION_DATA));
            assert!(plain[..plain.len() - 1].iter().all(|&b| b == 7));
            at += 5 + len;
        }
        assert_eq!(at, out.len());
    }
}

//! Turning a path's segmentation offloads off (`offload=off`), with the legacy ethtool ioctls every kernel still
//! answers (`base::env::ethtool`), so that no ethtool package is needed. Off, the sender's stack cuts every segment
//! itself and every queue on the path holds packets of one MTU: netem then drops and delays single segments, as a
//! real path does, rather than 64 KiB super-packets whole.

/// Legacy ethtool set commands (<linux/ethtool.h>).
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_SGRO: u32 = 0x2c;

/// TSO, GSO and GRO off on `dev`, in the calling thread's network namespace.
pub fn all_off(dev: &str) -> std::io::Result<()> {
    for (cmd, what) in [(ETHTOOL_STSO, "TSO"), (ETHTOOL_SGSO, "GSO"), (ETHTOOL_SGRO, "GRO")] {
        crate::base::env::ethtool(dev, cmd, 0)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{what} off on {dev}: {e}")))?;
    }
    Ok(())
}

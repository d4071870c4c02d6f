//! The JVM's own senders: the study's Java paths (`FileChannel.transferTo`, plain IO, NIO) run in a real JVM and
//! measured by the same sink as the native methods. This room owns the JDK (found, and the sender in the
//! repository's `jvm/` folder compiled into a cache: `jdk`), the JVM process and its command channel (`process`),
//! the JVM's sockets reached from here (`sockets`), its CPU and threads read from /proc (`cpu`), the check pass
//! that sees which JDK path ran (`check`), and a case's connections driven span by span (`sender`). It reaches
//! down only, to `experiment` and `base`; `commands::runner` drives it.

pub mod check;
pub mod cpu;
pub mod jdk;
pub mod process;
pub mod sender;
pub mod sockets;

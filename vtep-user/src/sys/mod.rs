//! The kernel interfaces vtep uses, each wrapped once: rtnetlink ([`netlink`]), the driver's XDP
//! features ([`netdev`]), the GRO setting ([`ethtool`]), named network
//! namespaces ([`netns`]) and interface names inside one ([`ifnames`]), sysctls ([`sysctl`]), the
//! monotonic clock the datapath stamps entries with ([`clock`]), the BPF filesystem ([`bpffs`]),
//! what tells objects of one name apart ([`identity`]), and the service manager's readiness
//! protocol ([`notify`]).

pub mod bpffs;
pub mod clock;
pub mod ethtool;
pub mod identity;
pub mod ifnames;
pub mod ifstats;
pub mod netdev;
pub mod netlink;
pub mod netns;
pub mod notify;
pub mod sysctl;

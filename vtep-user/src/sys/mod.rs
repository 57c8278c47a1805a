pub mod clock;
pub mod netlink;
pub mod netns;
pub mod sysctl;

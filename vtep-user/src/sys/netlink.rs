//! Link, address, route and neighbour operations over rtnetlink, for one network namespace.
//! "Neighbour" here is the kernel's neighbour table (`ip neigh`), which vtep uses only for the
//! underlay next hops of remote VTEPs; the overlay's ARP/ND answers are the datapath's proxy
//! table, not this.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
};

use anyhow::{Context as _, Result, anyhow};
use futures::TryStreamExt as _;
use rtnetlink::{
    Handle, LinkIfb, LinkUnspec, LinkVeth, RouteMessageBuilder,
    packet_route::{
        AddressFamily,
        address::AddressAttribute,
        link::{
            InfoKind, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage, LinkXdp,
            XdpAttached,
        },
        neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourMessage,
            NeighbourState,
        },
        route::{RouteAddress, RouteAttribute},
    },
};

/// What vtep needs to know about an interface.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub mac: [u8; 6],
    /// A veth whose peer lives in another network namespace.
    pub veth_peer_elsewhere: bool,
    /// Set up and with a carrier (`UP` and `LOWER_UP`).
    pub up: bool,
    /// A veth (wherever its peer is).
    pub veth: bool,
    /// Some XDP program is attached to it (vtep's or another's).
    pub has_xdp: bool,
}

/// What [`Net::configure`] sets on an interface; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct LinkSettings<'a> {
    pub name: Option<&'a str>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// Bring the interface up after the other settings.
    pub up: bool,
}

/// Netlink operations on one network namespace.
#[derive(Clone)]
pub struct Net {
    handle: Handle,
}

/// True when a netlink error says "no such device/entry".
fn is_not_found(err: &rtnetlink::Error) -> bool {
    matches!(err, rtnetlink::Error::NetlinkError(m)
        if m.code.map(|c| c.get()) == Some(-libc::ENODEV) || m.code.map(|c| c.get()) == Some(-libc::ENOENT))
}

impl Net {
    /// Operations over the connection behind `handle`.
    pub fn new(handle: Handle) -> Self {
        Self { handle }
    }

    /// A connection in the calling process's namespace.
    pub fn connect() -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection().context("opening netlink socket")?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// The interface called `name`, or `None` when there is none.
    pub async fn link(&self, name: &str) -> Result<Option<Link>> {
        let mut stream = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match stream.try_next().await {
            Ok(Some(msg)) => Ok(Some(link_from(&msg))),
            Ok(None) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("looking up interface `{name}`")),
        }
    }

    /// The interface with index `index`, or `None` when there is none.
    pub async fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        let mut stream = self.handle.link().get().match_index(index).execute();
        match stream.try_next().await {
            Ok(Some(msg)) => Ok(Some(link_from(&msg))),
            Ok(None) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("looking up interface {index}")),
        }
    }

    /// Every interface of the namespace. Fails when the kernel cannot list them.
    pub async fn links(&self) -> Result<Vec<Link>> {
        let mut stream = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(msg) = stream.try_next().await.context("listing interfaces")? {
            out.push(link_from(&msg));
        }
        Ok(out)
    }

    /// Like [`Net::link`], failing when the interface does not exist.
    pub async fn require_link(&self, name: &str) -> Result<Link> {
        self.link(name)
            .await?
            .ok_or_else(|| anyhow!("interface `{name}` does not exist"))
    }

    /// Creates a veth pair `name` <-> `peer`, both down.
    pub async fn add_veth(&self, name: &str, peer: &str) -> Result<()> {
        self.handle
            .link()
            .add(LinkVeth::new(name, peer).build())
            .execute()
            .await
            .with_context(|| format!("creating veth pair {name}/{peer}"))
    }

    /// Creates an `ifb` device `name` (down).
    pub async fn add_ifb(&self, name: &str) -> Result<()> {
        self.handle
            .link()
            .add(LinkIfb::new(name).build())
            .execute()
            .await
            .with_context(|| format!("creating ifb device {name}"))
    }

    /// Deletes interface `index`; one that is gone already is fine.
    pub async fn del_link(&self, index: u32) -> Result<()> {
        match self.handle.link().del(index).execute().await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.context("deleting interface"),
        }
    }

    /// Moves interface `index` into the namespace open as `netns`.
    pub async fn move_to_netns(&self, index: u32, netns: &std::fs::File) -> Result<()> {
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .setns_by_fd(netns.as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .context("moving interface to its namespace")
    }

    /// Sets what `settings` gives of name, MAC and MTU on interface `index`, then brings it up
    /// if asked. Fails when the kernel refuses either step.
    pub async fn configure(&self, index: u32, settings: &LinkSettings<'_>) -> Result<()> {
        let mut msg = LinkUnspec::new_with_index(index);
        if let Some(name) = settings.name {
            msg = msg.name(name.to_string());
        }
        if let Some(mac) = settings.mac {
            msg = msg.address(mac.to_vec());
        }
        if let Some(mtu) = settings.mtu {
            msg = msg.mtu(mtu);
        }
        self.handle
            .link()
            .set(msg.build())
            .execute()
            .await
            .context("configuring interface")?;
        if settings.up {
            self.handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .context("bringing interface up")?;
        }
        Ok(())
    }

    /// Adds `addr/prefix` to interface `index`.
    pub async fn add_address(&self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        self.handle
            .address()
            .add(index, addr.into(), prefix)
            .execute()
            .await
            .with_context(|| format!("adding address {addr}/{prefix}"))
    }

    /// The IPv4 addresses on interface `index`, in kernel order.
    pub async fn ipv4_addresses(&self, index: u32) -> Result<Vec<Ipv4Addr>> {
        Ok(self
            .ipv4_subnets(index)
            .await?
            .into_iter()
            .map(|(addr, _)| addr)
            .collect())
    }

    /// Every address of the namespace (IPv4 and IPv6), with the index of the interface it is on.
    pub async fn host_addresses(&self) -> Result<Vec<(u32, IpAddr)>> {
        let all = self.addresses(None).await?;
        Ok(all.into_iter().map(|(index, a, _)| (index, a)).collect())
    }

    /// The IPv6 addresses on interface `index` that can be a VTEP's (not link-local), in kernel
    /// order.
    pub async fn ipv6_addresses(&self, index: u32) -> Result<Vec<Ipv6Addr>> {
        let all = self.addresses(Some(index)).await?;
        Ok(all
            .into_iter()
            .filter_map(|(_, a, _)| match a {
                IpAddr::V6(v6) if !v6.is_unicast_link_local() => Some(v6),
                _ => None,
            })
            .collect())
    }

    /// Every address on interface `link` (or, with `None`, on every interface) as (interface,
    /// address, prefix length), in kernel order: an IPv4 address as its `Local` attribute says
    /// (the `Address` of a point-to-point link is the peer's), an IPv6 one as its `Address` (it
    /// has no `Local`).
    async fn addresses(&self, link: Option<u32>) -> Result<Vec<(u32, IpAddr, u8)>> {
        let mut request = self.handle.address().get();
        if let Some(index) = link {
            request = request.set_link_index_filter(index);
        }
        let mut stream = request.execute();
        let mut out = Vec::new();
        while let Some(msg) = stream.try_next().await.context("listing addresses")? {
            for attr in &msg.attributes {
                match attr {
                    AddressAttribute::Local(a @ IpAddr::V4(_))
                    | AddressAttribute::Address(a @ IpAddr::V6(_)) => {
                        out.push((msg.header.index, *a, msg.header.prefix_len))
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// How the kernel routes to `ip`: the output interface and the next hop (the gateway, or
    /// `ip` itself when on-link). `None` when there is no route.
    pub async fn route_to(&self, ip: IpAddr) -> Result<Option<(u32, IpAddr)>> {
        let msg = match ip {
            IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(v4, 32)
                .build(),
            IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(v6, 128)
                .build(),
        };
        let mut stream = self.handle.route().get(msg).execute();
        let reply = match stream.try_next().await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Ok(None),
            Err(rtnetlink::Error::NetlinkError(m))
                if matches!(
                    m.code.map(|c| -c.get()),
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH)
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e).with_context(|| format!("looking up the route to {ip}")),
        };
        let mut oif = None;
        let mut gateway = None;
        for attr in &reply.attributes {
            match attr {
                RouteAttribute::Oif(index) => oif = Some(*index),
                RouteAttribute::Gateway(RouteAddress::Inet(gw)) => gateway = Some(IpAddr::V4(*gw)),
                RouteAttribute::Gateway(RouteAddress::Inet6(gw)) => gateway = Some(IpAddr::V6(*gw)),
                _ => {}
            }
        }
        Ok(oif.map(|oif| (oif, gateway.unwrap_or(ip))))
    }

    /// Adds the route `to/prefix via via` (`ip route add`), or, with no `to`, the default route
    /// via `via`. Fails when the kernel refuses it (one to `to` exists, `via` is not on-link).
    pub async fn add_route(&self, to: Option<(Ipv4Addr, u8)>, via: Ipv4Addr) -> Result<()> {
        let (addr, prefix) = to.unwrap_or((Ipv4Addr::UNSPECIFIED, 0));
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(addr, prefix)
            .gateway(via)
            .build();
        self.handle
            .route()
            .add(msg)
            .execute()
            .await
            .with_context(|| format!("adding the route to {addr}/{prefix} via {via}"))
    }

    /// Removes the route `to/prefix via via`; a route already gone is fine.
    pub async fn del_route(&self, to: (Ipv4Addr, u8), via: Ipv4Addr) -> Result<()> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(to.0, to.1)
            .gateway(via)
            .build();
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m))
                if matches!(m.code.map(|c| -c.get()), Some(libc::ESRCH | libc::ENOENT)) =>
            {
                Ok(())
            }
            Err(e) => {
                Err(e).with_context(|| format!("removing the route to {}/{} via {via}", to.0, to.1))
            }
        }
    }

    /// Asks the kernel to resolve `ip` on interface `index` and keep it resolved (a "managed"
    /// neighbour entry). Returns false when an entry exists already, which the kernel resolves on
    /// use anyway.
    pub async fn add_managed_neighbour(&self, index: u32, ip: IpAddr) -> Result<bool> {
        let mut req = self
            .handle
            .neighbours()
            .add(index, ip)
            .state(NeighbourState::None);
        req.message_mut()
            .attributes
            .push(NeighbourAttribute::ExtFlags(NeighbourExtFlags::Managed));
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(m))
                if m.code.map(|c| c.get()) == Some(-libc::EEXIST) =>
            {
                Ok(false)
            }
            Err(e) => Err(e).with_context(|| format!("adding neighbour {ip}")),
        }
    }

    /// Every IPv4 (or, with `ipv6`, IPv6) neighbour entry, as (interface, IP) → its MAC when
    /// usable. Usable means what the kernel itself would send to without resolving first:
    /// reachable, or stale/delay/probe (being re-confirmed, still sent to), or permanent; `None`
    /// for an entry being resolved or that failed.
    pub async fn neighbours(&self, ipv6: bool) -> Result<HashMap<(u32, IpAddr), Option<[u8; 6]>>> {
        const USABLE: [NeighbourState; 5] = [
            NeighbourState::Reachable,
            NeighbourState::Stale,
            NeighbourState::Delay,
            NeighbourState::Probe,
            NeighbourState::Permanent,
        ];
        let mut out = HashMap::new();
        let mut stream = self
            .handle
            .neighbours()
            .get()
            .set_address_family(if ipv6 {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            })
            .execute();
        while let Some(msg) = stream.try_next().await.context("listing neighbours")? {
            let mut ip = None;
            let mut mac = None;
            for attr in &msg.attributes {
                match attr {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(d)) => {
                        ip = Some(IpAddr::V4(*d))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(d)) => {
                        ip = Some(IpAddr::V6(*d))
                    }
                    NeighbourAttribute::LinkLayerAddress(a) if a.len() == 6 => {
                        let mut m = [0u8; 6];
                        m.copy_from_slice(a);
                        mac = Some(m);
                    }
                    _ => {}
                }
            }
            if let Some(ip) = ip {
                let usable = USABLE.contains(&msg.header.state);
                out.insert((msg.header.ifindex, ip), mac.filter(|_| usable));
            }
        }
        Ok(out)
    }

    /// Deletes the neighbour entry for `ip` on interface `index`; one that is gone is fine.
    pub async fn del_neighbour(&self, index: u32, ip: IpAddr) -> Result<()> {
        let mut msg = NeighbourMessage::default();
        msg.header.ifindex = index;
        let (family, address) = match ip {
            IpAddr::V4(v4) => (AddressFamily::Inet, NeighbourAddress::Inet(v4)),
            IpAddr::V6(v6) => (AddressFamily::Inet6, NeighbourAddress::Inet6(v6)),
        };
        msg.header.family = family;
        msg.attributes
            .push(NeighbourAttribute::Destination(address));
        match self.handle.neighbours().del(msg).execute().await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.with_context(|| format!("deleting neighbour {ip}")),
        }
    }

    /// The IPv4 subnets on interface `index`, as (address, prefix length), in kernel order.
    pub async fn ipv4_subnets(&self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>> {
        let all = self.addresses(Some(index)).await?;
        Ok(all
            .into_iter()
            .filter_map(|(_, a, len)| match a {
                IpAddr::V4(v4) => Some((v4, len)),
                IpAddr::V6(_) => None,
            })
            .collect())
    }
}

/// What vtep needs from a link message.
fn link_from(msg: &LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mtu: 0,
        mac: [0; 6],
        veth_peer_elsewhere: false,
        up: msg
            .header
            .flags
            .contains(LinkFlags::Up | LinkFlags::LowerUp),
        veth: false,
        has_xdp: false,
    };
    let mut is_veth = false;
    let mut peer_netns = false;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::Address(a) if a.len() == 6 => link.mac.copy_from_slice(a),
            LinkAttribute::LinkNetNsId(_) => peer_netns = true,
            LinkAttribute::LinkInfo(infos) => {
                is_veth |= infos
                    .iter()
                    .any(|i| matches!(i, NlLinkInfo::Kind(InfoKind::Veth)));
            }
            LinkAttribute::Xdp(xdp) => {
                link.has_xdp |= xdp
                    .iter()
                    .any(|x| matches!(x, LinkXdp::Attached(a) if *a != XdpAttached::None));
            }
            _ => {}
        }
    }
    link.veth = is_veth;
    link.veth_peer_elsewhere = is_veth && peer_netns;
    link
}

// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// xgate's offload program (issue 16): established connections forwarded
// in XDP, everything else handed to the AF_XDP socket of the receive
// queue exactly as afxdp/prog.rs's five-instruction program does.
//
// A frame is looked up in `flows` by (ingress device, VLAN, family,
// protocol, addresses, ports). On a hit the program applies what the
// workers computed for that direction of the connection (offload.rs,
// FlowAction::learn: the difference between a frame the pipeline received
// and the frame it sent): TTL / hop limit - 1, NAT of addresses and ports
// with incremental checksums (RFC 1624), the egress MACs and VLAN tag,
// and redirects it to the egress device through `ports`. It counts the
// entry's packets and bytes (IP length, as conntrack counts) and when it
// was last seen, which the control thread folds into the connection.
//
// The slow path (the socket) takes a miss and everything the pipeline must
// see or might drop: not Ethernet II IPv4/IPv6 with TCP or UDP right after
// the IP header, more than one VLAN tag or a priority tag (VLAN ID 0), IPv4
// options, fragments, a bad IPv4 header checksum, lengths that do not add
// up (IP length beyond the frame or shorter than its headers, a TCP data
// offset or UDP length outside the packet), TTL / hop limit <= 1, a TCP
// SYN, FIN or RST (connection state) or a segment without ACK (INVALID to
// the workers), a UDP/IPv6 datagram without checksum (RFC 6936: the
// workers forward it as it is), a frame not sent to the ingress
// interface's MAC, an entry of an older epoch (a flush: one write voids
// them all), a packet larger than the egress MTU, an egress the program
// may not redirect to. Nothing is
// written to a frame before it is known to be offloaded. Ethernet padding
// is trimmed, as the pipeline trims it. `stats` counts each outcome per
// CPU (enum outcome).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Must match offload.rs (FlowKey, FlowAction, Outcome).
struct flow_key {
	__u32 ifindex;
	__u16 vlan;   // VLAN ID of the frame's tag, 0 when untagged
	__u8 family;  // 4 or 6
	__u8 proto;   // IPPROTO_TCP or IPPROTO_UDP
	__be16 sport;
	__be16 dport;
	__u32 pad;
	__be32 src[4]; // IPv4 in src[0], the rest zero
	__be32 dst[4];
};

struct flow_action {
	__u32 out_ifindex;
	__u16 out_vlan; // 0: untagged
	__u16 mtu;      // the largest IP packet the egress takes
	__u8 dmac[6];
	__u8 smac[6];
	__be32 src[4];  // addresses and ports after NAT (the same without)
	__be32 dst[4];
	__be16 sport;
	__be16 dport;
	__u32 flags;
	__u32 epoch;    // valid while it equals `epoch`'s value
	__u64 packets;
	__u64 bytes;
	__u64 last_seen; // bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC_COARSE
	__u8 in_mac[6]; // the ingress interface's MAC: frames to another go slow
	__u16 pad;
};

enum outcome {
	OUT_OFFLOADED,
	OUT_MISS,
	OUT_NOT_OFFLOADABLE, // not IPv4/IPv6 TCP/UDP, several tags, short
	OUT_IP_OPTIONS,
	OUT_FRAGMENT,
	OUT_TTL,
	OUT_TCP_FLAGS,
	OUT_MTU,
	OUT_NO_ROOM,  // the VLAN push found no headroom (the frame is dropped)
	OUT_NO_PORT,  // the egress is not in `ports`
	OUT_MALFORMED, // lengths or the IPv4 header checksum: the workers decide
	OUT_STALE,     // an entry of an older epoch (a flush under way)
	OUT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

// Not preallocated: a deleted or replaced element is freed after an RCU
// grace period, so a lookup's pointer never sees another flow's action.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow_key);
	__type(value, struct flow_action);
} flows SEC(".maps");

// The current epoch: bumping it (one write) voids every entry at once.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} epoch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OUT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

static __always_inline void count(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &what);
	if (n)
		*n += 1;
}

static __always_inline int slow(struct xdp_md *ctx, __u32 why)
{
	count(why);
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_DROP);
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	int same = 1;
#pragma unroll
	for (int i = 0; i < 6; i++)
		same &= a[i] == b[i];
	return same;
}

static __always_inline __u16 fold(__u32 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)c;
}

// RFC 1624 eqn. 3, on 16-bit words as they lie in memory (the one's
// complement sum does not depend on byte order).
static __always_inline __u16 replace16(__u16 check, __u16 old, __u16 new)
{
	return ~fold((__u16)~check + (__u16)~old + (__u32)new);
}

static __always_inline __u16 replace32(__u16 check, __u32 old, __u32 new)
{
	__u32 c = (__u16)~check;
	c += (__u16)~(old >> 16);
	c += (__u16)~(old & 0xffff);
	c += new >> 16;
	c += new & 0xffff;
	return ~fold(c);
}

SEC("xdp")
int xgate_offload(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return slow(ctx, OUT_NOT_OFFLOADABLE);
	__be16 type = eth->h_proto;
	__u32 l2 = sizeof(*eth);
	__u16 vlan = 0;
	int tagged = 0;
	if (type == bpf_htons(ETH_P_8021Q)) {
		struct vlan_tag *t = data + l2;
		if ((void *)(t + 1) > end)
			return slow(ctx, OUT_NOT_OFFLOADABLE);
		vlan = bpf_ntohs(t->tci) & 0x0fff;
		// A priority tag (ID 0) is the workers' (the key's 0 is "untagged").
		if (!vlan)
			return slow(ctx, OUT_NOT_OFFLOADABLE);
		tagged = 1;
		type = t->proto;
		l2 += sizeof(*t);
	}
	if (type == bpf_htons(ETH_P_8021Q) || type == bpf_htons(ETH_P_8021AD))
		return slow(ctx, OUT_NOT_OFFLOADABLE);

	struct flow_key k = {};
	k.ifindex = ctx->ingress_ifindex;
	k.vlan = vlan;
	struct iphdr *ip4 = 0;
	struct ipv6hdr *ip6 = 0;
	void *l4;
	__u32 iplen;
	if (type == bpf_htons(ETH_P_IP)) {
		ip4 = data + l2;
		if ((void *)(ip4 + 1) > end)
			return slow(ctx, OUT_NOT_OFFLOADABLE);
		if (ip4->version != 4 || ip4->ihl != 5)
			return slow(ctx, OUT_IP_OPTIONS);
		if (ip4->frag_off & bpf_htons(0x3fff))
			return slow(ctx, OUT_FRAGMENT);
		if (ip4->ttl <= 1)
			return slow(ctx, OUT_TTL);
		// The header checksum, as the pipeline verifies it.
		__u16 *w = (__u16 *)ip4;
		__u32 sum = 0;
#pragma unroll
		for (int i = 0; i < 10; i++)
			sum += w[i];
		if (fold(sum) != 0xffff)
			return slow(ctx, OUT_MALFORMED);
		k.family = 4;
		k.proto = ip4->protocol;
		k.src[0] = ip4->saddr;
		k.dst[0] = ip4->daddr;
		iplen = bpf_ntohs(ip4->tot_len);
		l4 = ip4 + 1;
	} else if (type == bpf_htons(ETH_P_IPV6)) {
		ip6 = data + l2;
		if ((void *)(ip6 + 1) > end)
			return slow(ctx, OUT_NOT_OFFLOADABLE);
		if (ip6->version != 6)
			return slow(ctx, OUT_NOT_OFFLOADABLE);
		if (ip6->hop_limit <= 1)
			return slow(ctx, OUT_TTL);
		k.family = 6;
		k.proto = ip6->nexthdr;
		__builtin_memcpy(k.src, &ip6->saddr, 16);
		__builtin_memcpy(k.dst, &ip6->daddr, 16);
		iplen = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		l4 = ip6 + 1;
	} else {
		return slow(ctx, OUT_NOT_OFFLOADABLE);
	}
	// The frame must hold the whole IP packet (Ethernet padding may follow).
	__u32 l3hdr = ip4 ? sizeof(*ip4) : sizeof(*ip6);
	__u32 frame_len = end - data;
	if (l2 + iplen > frame_len || iplen > 0xffff)
		return slow(ctx, OUT_MALFORMED);
	__u32 l4len = iplen - l3hdr;
	if (iplen < l3hdr)
		return slow(ctx, OUT_MALFORMED);

	struct tcphdr *th = 0;
	struct udphdr *uh = 0;
	if (k.proto == IPPROTO_TCP) {
		th = l4;
		if ((void *)(th + 1) > end || l4len < sizeof(*th))
			return slow(ctx, OUT_MALFORMED);
		if (th->doff < 5 || th->doff * 4 > l4len)
			return slow(ctx, OUT_MALFORMED);
		// Only what a connection's data segments carry (ACK, with PSH,
		// URG, ECE, CWR): SYN/FIN/RST change its state, and segments
		// without ACK are INVALID to the workers' tracking.
		if (!th->ack || th->syn || th->fin || th->rst)
			return slow(ctx, OUT_TCP_FLAGS);
		k.sport = th->source;
		k.dport = th->dest;
	} else if (k.proto == IPPROTO_UDP) {
		uh = l4;
		if ((void *)(uh + 1) > end || l4len < sizeof(*uh))
			return slow(ctx, OUT_MALFORMED);
		__u32 ulen = bpf_ntohs(uh->len);
		if (ulen < sizeof(*uh) || ulen > l4len)
			return slow(ctx, OUT_MALFORMED);
		if (ip6 && !uh->check)
			return slow(ctx, OUT_NOT_OFFLOADABLE);
		k.sport = uh->source;
		k.dport = uh->dest;
	} else {
		return slow(ctx, OUT_NOT_OFFLOADABLE);
	}

	struct flow_action *a = bpf_map_lookup_elem(&flows, &k);
	if (!a)
		return slow(ctx, OUT_MISS);
	__u32 zero = 0;
	__u32 *cur = bpf_map_lookup_elem(&epoch, &zero);
	if (!cur || a->epoch != *cur)
		return slow(ctx, OUT_STALE);
	// Only frames sent to the router: a broadcast, multicast or another
	// host's frame (promiscuous, veth) is the workers' (they drop it).
	if (!mac_eq(eth->h_dest, a->in_mac))
		return slow(ctx, OUT_NOT_OFFLOADABLE);
	if (iplen > a->mtu)
		return slow(ctx, OUT_MTU);
	__u32 out_ifindex = a->out_ifindex;
	if (!bpf_map_lookup_elem(&ports, &out_ifindex))
		return slow(ctx, OUT_NO_PORT);

	// The transport checksum covers the pseudo-header: address changes
	// update it too. A UDP/IPv4 checksum of 0 means none, and stays 0.
	__u16 *l4sum = 0;
	if (th)
		l4sum = &th->check;
	else if (uh && (ip6 || uh->check))
		l4sum = &uh->check;
	if (ip4) {
		__u16 old = *(__u16 *)&ip4->ttl;
		ip4->ttl--;
		ip4->check = replace16(ip4->check, old, *(__u16 *)&ip4->ttl);
		if (a->src[0] != ip4->saddr) {
			ip4->check = replace32(ip4->check, ip4->saddr, a->src[0]);
			if (l4sum)
				*l4sum = replace32(*l4sum, ip4->saddr, a->src[0]);
			ip4->saddr = a->src[0];
		}
		if (a->dst[0] != ip4->daddr) {
			ip4->check = replace32(ip4->check, ip4->daddr, a->dst[0]);
			if (l4sum)
				*l4sum = replace32(*l4sum, ip4->daddr, a->dst[0]);
			ip4->daddr = a->dst[0];
		}
	} else if (ip6) {
		ip6->hop_limit--;
		__u32 *s = (__u32 *)&ip6->saddr;
		__u32 *d = (__u32 *)&ip6->daddr;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			if (a->src[i] != s[i]) {
				if (l4sum)
					*l4sum = replace32(*l4sum, s[i], a->src[i]);
				s[i] = a->src[i];
			}
			if (a->dst[i] != d[i]) {
				if (l4sum)
					*l4sum = replace32(*l4sum, d[i], a->dst[i]);
				d[i] = a->dst[i];
			}
		}
	}
	// Source and destination ports lie at the same place in TCP and UDP.
	__be16 *sp = l4;
	__be16 *dp = l4 + 2;
	if ((void *)(dp + 1) > end)
		return XDP_DROP;
	if (a->sport != *sp) {
		if (l4sum)
			*l4sum = replace16(*l4sum, *sp, a->sport);
		*sp = a->sport;
	}
	if (a->dport != *dp) {
		if (l4sum)
			*l4sum = replace16(*l4sum, *dp, a->dport);
		*dp = a->dport;
	}
	// A UDP checksum that comes out 0 is sent as all ones (RFC 768).
	if (uh && l4sum && *l4sum == 0)
		*l4sum = 0xffff;

	__u16 out_vlan = a->out_vlan;
	__u8 dmac[6], smac[6];
	__builtin_memcpy(dmac, a->dmac, 6);
	__builtin_memcpy(smac, a->smac, 6);

	// The link layer, rebuilt: the tag popped, pushed or kept. XDP keeps
	// 256 bytes of headroom, so a push does not fail in practice; if it
	// did, the frame (already rewritten) is dropped, not handed on.
	int shrink = (tagged ? 4 : 0) - (out_vlan ? 4 : 0);
	if (shrink && bpf_xdp_adjust_head(ctx, shrink)) {
		count(OUT_NO_ROOM);
		return XDP_DROP;
	}
	// Ethernet padding after the IP packet goes, as in the pipeline.
	int pad = frame_len - l2 - iplen;
	if (pad > 0 && bpf_xdp_adjust_tail(ctx, -pad)) {
		count(OUT_NO_ROOM);
		return XDP_DROP;
	}
	__sync_fetch_and_add(&a->packets, 1);
	__sync_fetch_and_add(&a->bytes, iplen);
	a->last_seen = bpf_ktime_get_coarse_ns();
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, dmac, 6);
	__builtin_memcpy(eth->h_source, smac, 6);
	if (out_vlan) {
		struct vlan_tag *t = data + sizeof(*eth);
		if ((void *)(t + 1) > end)
			return XDP_DROP;
		eth->h_proto = bpf_htons(ETH_P_8021Q);
		t->tci = bpf_htons(out_vlan);
		t->proto = type;
	} else {
		eth->h_proto = type;
	}
	count(OUT_OFFLOADED);
	return bpf_redirect_map(&ports, out_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";

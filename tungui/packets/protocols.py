"""Numbers of the link and network layers, and the names a person reads for them.

Shared by the decoder (:mod:`.decode`) and the packet builder (:mod:`.build`),
so both speak of a protocol by the same number.
"""

from __future__ import annotations

import dpkt

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD

ETHERTYPE_NAMES = {
    ETH_P_IP: "IPv4",
    ETH_P_ARP: "ARP",
    ETH_P_IPV6: "IPv6",
    0x8035: "RARP",
    0x8100: "802.1Q",
    0x88A8: "802.1ad",
    0x8809: "Slow Protocols",
    0x8847: "MPLS",
    0x8848: "MPLS multicast",
    0x8863: "PPPoE discovery",
    0x8864: "PPPoE session",
    0x888E: "EAPOL",
    0x88CC: "LLDP",
    0x88F7: "PTP",
    0x9000: "Loopback",
}

IP_PROTO_NAMES = {
    0: "HOPOPT",
    1: "ICMP",
    2: "IGMP",
    4: "IPIP",
    6: "TCP",
    17: "UDP",
    41: "IPv6",
    43: "IPv6-Route",
    44: "IPv6-Frag",
    47: "GRE",
    50: "ESP",
    51: "AH",
    58: "ICMPv6",
    59: "IPv6-NoNxt",
    60: "IPv6-Opts",
    89: "OSPF",
    103: "PIM",
    112: "VRRP",
    132: "SCTP",
}

ICMP_TYPES = {
    0: "echo reply",
    3: "destination unreachable",
    4: "source quench",
    5: "redirect",
    8: "echo request",
    9: "router advertisement",
    10: "router solicitation",
    11: "time exceeded",
    12: "parameter problem",
    13: "timestamp request",
    14: "timestamp reply",
}

ICMP_UNREACHABLE = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    9: "network prohibited",
    10: "host prohibited",
    13: "administratively prohibited",
}

ICMP6_TYPES = {
    1: "destination unreachable",
    2: "packet too big",
    3: "time exceeded",
    4: "parameter problem",
    128: "echo request",
    129: "echo reply",
    130: "multicast listener query",
    131: "multicast listener report",
    132: "multicast listener done",
    133: "router solicitation",
    134: "router advertisement",
    135: "neighbor solicitation",
    136: "neighbor advertisement",
    137: "redirect",
    143: "multicast listener report v2",
}

ICMP6_UNREACHABLE = {
    0: "no route",
    1: "administratively prohibited",
    3: "address unreachable",
    4: "port unreachable",
}

# TCP flags in Wireshark's order (lowest bit first): "[SYN, ACK]", "[FIN, PSH, ACK]".
TCP_FLAGS = (
    (dpkt.tcp.TH_FIN, "FIN"),
    (dpkt.tcp.TH_SYN, "SYN"),
    (dpkt.tcp.TH_RST, "RST"),
    (dpkt.tcp.TH_PUSH, "PSH"),
    (dpkt.tcp.TH_ACK, "ACK"),
    (dpkt.tcp.TH_URG, "URG"),
    (dpkt.tcp.TH_ECE, "ECE"),
    (dpkt.tcp.TH_CWR, "CWR"),
    (dpkt.tcp.TH_NS, "NS"),
)

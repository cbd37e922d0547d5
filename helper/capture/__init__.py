"""Packet capture for one caller, over a stream only that caller holds.

- :mod:`.stream`: the stream, its counters and its end, common to both sources;
- :mod:`.ring`: any device, through a packet socket's ring (:mod:`.tpacket`)
  with a BPF program that cuts and samples in the kernel (:mod:`.bpf`);
- :mod:`.held`: a device the helper holds, read from its queues;
- :mod:`.sampler`: at most ``max_rate`` packets a second, for both.

Bounded whatever the traffic: the ring, the slots and the stream's buffer
are fixed, and a message the reader is too slow for is dropped and its
packets counted.  No packet is parsed here beyond its length.
"""

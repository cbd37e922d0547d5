"""Packets on the front end's side, without Qt: shared by the window and ``tunguictl``.

* :mod:`.stream`: the capture stream the helper sends (reading its messages);
* :mod:`.decode`: one-line summaries of packets;
* :mod:`.protocols`: protocol numbers and their names, for decoding and building;
* :mod:`.pcapng`: capture files for Wireshark;
* :mod:`.build`: packets made from a few values (ARP, ICMP echo, UDP);
* :mod:`.sendform`: the Send Packet dialog's state and its checking.
"""

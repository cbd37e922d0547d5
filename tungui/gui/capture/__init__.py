"""Watch Packets: the controller that starts a capture, the capture stream read
on a thread (:mod:`.reader`), a model of the packets kept (:mod:`.model`), and
the window that shows them and saves them for Wireshark (:mod:`.window`)."""

"""The packet window: the capture stream read on a thread, a model of the
packets kept, and the window that shows them and saves them for Wireshark."""

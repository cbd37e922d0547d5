"""Send Packet: the controller that injects the packet, and the dialog that builds
it (its Qt-free form is :mod:`tungui.packets.sendform`)."""

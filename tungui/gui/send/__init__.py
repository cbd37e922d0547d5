"""The Send Packet dialog (its Qt-free form is :mod:`tungui.packets.sendform`)."""

"""The devices: their list (:mod:`.model`, shown by the main window), the New and
Properties dialog (:mod:`.dialog` over its Qt-free :mod:`.dialogform`), the traffic
graph, "Copy as command", and the window's controller (:mod:`.controller`)."""

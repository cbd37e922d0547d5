"""The device list (model), the New/Properties dialog (view and its Qt-free
form), the traffic graph, and the controller that turns actions into calls."""

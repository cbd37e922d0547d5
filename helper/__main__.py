"""``python -m tungui_helper``."""

from .main import main

raise SystemExit(main())

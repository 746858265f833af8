"""Renderings of an :class:`~adscore.alerts.Alert`, one module per medium.

- :mod:`adscore.render.text`: JSON lines and a terminal table (``rich``).
- :mod:`adscore.render.ocsf`: an OCSF 1.1 Detection Finding.
- :mod:`adscore.render.slack`: a Slack Block Kit message.
- :mod:`adscore.render.teams`: a Microsoft Teams message with an Adaptive Card.
- :mod:`adscore.render.escape`: the shared capping and escaping helpers.

Renderers are pure functions. Escaping for a medium happens here and nowhere
else; nothing is imported eagerly from this package.
"""

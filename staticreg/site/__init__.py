"""The browse site: its pages rendered from the model (pages), and package text from
strangers made safe for HTML (untrusted). The templates are site-template/ at the top of
the checkout, inside the package once installed."""

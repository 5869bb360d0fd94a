"""Who may connect and how much: keys and tokens (`auth`), admission, limits."""

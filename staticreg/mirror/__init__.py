"""`staticreg mirror`: the lockfiles of every client read (lockfiles), and exactly the
versions they need fetched from an upstream and verified (mirror)."""

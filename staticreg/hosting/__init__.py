"""A registry where it is served: web server configurations (server_config, templates/)
and host files (host_files, cloudfront), tokens and password files (auth), a folder or a
bucket written one file at a time (store), publish and its kin on a hosted registry
(hosted), uploads to a bucket (deploy), and checks of a live host (check, private_check)."""

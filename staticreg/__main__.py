from staticreg.cli import main

main()

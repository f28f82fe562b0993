from yunhui.cli import main

main()

from mevblade.control.cli import main

main()

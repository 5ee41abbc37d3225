from testbed.agent.main import main

main()

print("saraban-sim: under construction")

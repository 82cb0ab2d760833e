print("saraban: under construction")

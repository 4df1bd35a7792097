"""What a person uses to look at graphs: printing summaries, pictures, explanations of the
backprop recursion, and the command line."""

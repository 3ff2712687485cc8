package payments

// SetSweepPage makes s's sweeps read n orders at a time, so a test can page
// through orders created at one instant without making hundreds of them.
func SetSweepPage(s *Service, n int) { s.sweepPage = n }

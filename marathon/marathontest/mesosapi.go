package marathontest

// FrameworkID is Marathon's Mesos framework ID, as reported in /v2/info
// (frameworkId) and in the master's state.
func (s *Server) FrameworkID() string { return s.c.frameworkID }

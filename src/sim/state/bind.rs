//! Binding and unbinding: CVM's all-or-nothing batches with `ForceStop`, Lighthouse's asynchronous
//! operations, and ECS's per-instance results that wait for a reboot (protocols.md 3.2, 3.3, 4.3, 4.4,
//! 5.3). The rules and the choices made where the documentation is silent are listed in [`super`].

use super::*;

// === impl Cloud: binding ===

impl Cloud {
    /// The checks every Tencent batch makes before anything changes; the instances' indexes and the keys.
    fn check_tencent_batch<'o>(&self, op: &'o Operation) -> Result<(Vec<usize>, &'o [String]), Fault> {
        let Keys::Ids(keys) = &op.keys else {
            return Err(fault(Code::InvalidParameter, "Key pairs are named by id here, not by name."));
        };
        require(&op.instances, "instance")?;
        require(keys, "key pair")?;
        within(op.instances.len(), self.rules.max_instances, "instances")?;
        within(keys.len(), self.rules.max_keys, "key pairs")?;
        unique(&op.instances, "instance ids")?;
        unique(keys, "key pair ids")?;
        well_formed(&op.instances, &self.rules.instance_id, Code::MalformedInstanceId, "instance id")?;
        well_formed(keys, &self.rules.key_id, Code::MalformedKeyId, "key pair id")?;
        let indexes = op
            .instances
            .iter()
            .map(|id| self.find(id).ok_or_else(|| instance_not_found(id)))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(key) = keys.iter().find(|k| !self.has_key(k)) {
            return Err(key_not_found(key));
        }
        if let Some(vm) = indexes.iter().map(|&i| &self.instances[i]).find(|vm| vm.os == OsFamily::Windows) {
            return Err(windows_not_supported(&vm.id));
        }
        Ok((indexes, keys))
    }

    /// CVM: all or nothing, `STOPPED` only unless `ForceStop`, synchronous.
    pub(super) fn bind_cvm(&mut self, op: &Operation, started: &Started<'_>) -> Result<Answer, Fault> {
        let (indexes, keys) = self.check_tencent_batch(op)?;
        let force_stop = op.force_stop == Some(true);
        for &i in &indexes {
            let vm = &self.instances[i];
            let allowed = vm.state == words::TENCENT_STOPPED || (force_stop && vm.state == words::TENCENT_RUNNING);
            if !allowed {
                let hint = if vm.state == words::TENCENT_RUNNING { " (or RUNNING with ForceStop)" } else { "" };
                let message =
                    format!("The instance `{}` is {}; only STOPPED instances{hint} are supported.", vm.id, vm.state);
                return Err(fault(Code::InvalidInstanceState, message).with_detail(vm.state.clone()));
            }
        }
        for &i in &indexes {
            let vm = &mut self.instances[i];
            // A RUNNING instance is force-stopped, changed and started again: its state ends where it began.
            let after = keys_after(op.action, &vm.keys, keys);
            vm.bind_now(after);
            vm.latest_operation = Some(latest(op.action, OperationState::Success, started));
        }
        Ok(all_ok(&op.instances))
    }

    /// Lighthouse: all or nothing, `RUNNING` or `STOPPED`, asynchronous.
    pub(super) fn bind_lighthouse(&mut self, op: &Operation, started: &Started<'_>) -> Result<Answer, Fault> {
        let (indexes, keys) = self.check_tencent_batch(op)?;
        let vms: Vec<&Instance> = indexes.iter().map(|&i| &self.instances[i]).collect();
        if let Some(vm) = vms.iter().find(|vm| vm.is_busy()) {
            return Err(operation_in_progress(vm));
        }
        if let Some(vm) = vms.iter().find(|vm| vm.state != words::TENCENT_RUNNING && vm.state != words::TENCENT_STOPPED)
        {
            let message =
                format!("The instance `{}` is {}; only RUNNING or STOPPED instances are supported.", vm.id, vm.state);
            return Err(fault(Code::InvalidInstanceState, message).with_detail(vm.state.clone()));
        }
        for vm in &vms {
            let bound = |k: &&String| vm.keys.contains(k);
            let refusal = match op.action {
                Action::AssociateKeys => keys.iter().find(bound).map(|k| (Code::KeyAlreadyBound, k, "is already")),
                _ => keys.iter().find(|k| !bound(k)).map(|k| (Code::KeyNotBound, k, "is not")),
            };
            if let Some((code, key, is)) = refusal {
                return Err(fault(code, format!("The key pair `{key}` {is} bound to the instance `{}`.", vm.id)));
            }
        }
        for &i in &indexes {
            let vm = &mut self.instances[i];
            let after = keys_after(op.action, &vm.keys, keys);
            vm.pending = Some(PendingChange { due_ms: started.now_ms.saturating_add(started.delay_ms), keys: after });
            if vm.state == words::TENCENT_RUNNING {
                vm.state = words::TENCENT_STOPPING.to_owned();
            }
            vm.latest_operation = Some(latest(op.action, OperationState::Operating, started));
        }
        Ok(all_ok(&op.instances))
    }

    /// ECS: one key name, a result per instance, any state, effective after reboot or start.
    pub(super) fn bind_ecs(&mut self, op: &Operation) -> Result<Answer, Fault> {
        let names = op.keys.as_slice();
        require(names, "key pair")?;
        within(names.len(), self.rules.max_keys, "key pairs")?;
        let [name] = names else {
            return Err(fault(Code::LimitExceeded, "One key pair name per request."));
        };
        require(&op.instances, "instance")?;
        within(op.instances.len(), self.rules.max_instances, "instances")?;
        unique(&op.instances, "instance ids")?;
        well_formed(&op.instances, &self.rules.instance_id, Code::MalformedInstanceId, "instance id")?;
        well_formed(names, &self.rules.key_id, Code::MalformedKeyId, "key pair name")?;
        if !self.has_key(name) {
            return Err(key_not_found(name));
        }
        let results = op
            .instances
            .iter()
            .map(|id| InstanceResult { instance: id.clone(), result: self.bind_ecs_one(op.action, id, name) })
            .collect();
        Ok(Answer::Bind(results))
    }

    fn bind_ecs_one(&mut self, action: Action, id: &str, name: &str) -> Result<(), Fault> {
        let index = self.find(id).ok_or_else(|| instance_not_found(id))?;
        let vm = &mut self.instances[index];
        if vm.os == OsFamily::Windows {
            return Err(windows_not_supported(id));
        }
        match action {
            Action::AssociateKeys => vm.keys = vec![name.to_owned()],
            _ if vm.keys.iter().any(|k| k == name) => vm.keys.clear(),
            _ => {
                let message = format!("The key pair `{name}` is not attached to the instance `{id}`.");
                return Err(fault(Code::KeyNotBound, message));
            }
        }
        vm.pending_reboot = vm.keys != vm.effective_keys;
        Ok(())
    }
}

fn windows_not_supported(id: &str) -> Fault {
    let message = format!("The instance `{id}` runs Windows, which does not support SSH key pairs.");
    fault(Code::InstanceNotSupported, message)
}

/// The keys an instance has after binding (the listed keys replace the old ones) or unbinding.
fn keys_after(action: Action, current: &[String], listed: &[String]) -> Vec<String> {
    match action {
        Action::AssociateKeys => listed.to_vec(),
        _ => current.iter().filter(|k| !listed.contains(k)).cloned().collect(),
    }
}

fn latest(action: Action, state: OperationState, started: &Started<'_>) -> LatestOperation {
    LatestOperation { action, state, request_id: started.request_id.to_owned(), started_ms: started.now_ms }
}

fn all_ok(instances: &[String]) -> Answer {
    Answer::Bind(instances.iter().map(|id| InstanceResult { instance: id.clone(), result: Ok(()) }).collect())
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use crate::model::Source;
    use crate::sim::seed;

    // === CVM ===

    #[test]
    fn cvm_binds_stopped_instances_and_records_the_operation() {
        let mut cloud = seed::demo();
        let outcome =
            cloud.apply(CVM, &bind(&["ins-1e4r6y8i", "ins-3e56fg78"], ids(&["skey-4e5ty7i8"])), "6EF60BEC", 7).unwrap();
        assert_eq!(outcome.request_id, "6EF60BEC");
        assert_eq!(results(&outcome), [("ins-1e4r6y8i", Ok(())), ("ins-3e56fg78", Ok(()))]);
        for id in ["ins-1e4r6y8i", "ins-3e56fg78"] {
            let vm = cloud.instance(CVM, id).unwrap();
            assert_eq!(vm.keys, ["skey-4e5ty7i8"]);
            assert_eq!(vm.effective_keys, ["skey-4e5ty7i8"]);
            assert_eq!(vm.state, "STOPPED");
        }
        let info = &instances_info(&mut cloud, CVM, &["ins-1e4r6y8i"], 8)[0];
        assert_eq!(info.latest_operation.as_deref(), Some("AssociateInstancesKeyPairs"));
        assert_eq!(info.latest_operation_state, Some(OperationState::Success));
        assert_eq!(info.latest_operation_request_id.as_deref(), Some("6EF60BEC"));
        let keys = key_infos(&mut cloud, CVM, ids(&["skey-4e5ty7i8"])).unwrap();
        assert_eq!(keys[0].instances, ["ins-1e4r6y8i", "ins-3e56fg78"]);
    }

    #[test]
    fn cvm_binding_replaces_the_earlier_keys() {
        let mut cloud = seed::demo();
        cloud.apply(CVM, &bind(&["ins-1e4r6y8i"], ids(&["skey-11112222"])), "r1", 0).unwrap();
        cloud.apply(CVM, &bind(&["ins-1e4r6y8i"], ids(&["skey-4e5ty7i8"])), "r2", 0).unwrap();
        assert_eq!(keys_of(&cloud, CVM, "ins-1e4r6y8i"), ["skey-4e5ty7i8"]);
        // Binding a key that is already bound is allowed: CVM simply binds again.
        cloud.apply(CVM, &bind(&["ins-1e4r6y8i"], ids(&["skey-4e5ty7i8", "skey-11112222"])), "r3", 0).unwrap();
        assert_eq!(keys_of(&cloud, CVM, "ins-1e4r6y8i"), ["skey-4e5ty7i8", "skey-11112222"]);
    }

    #[test]
    fn cvm_unbinding_removes_the_listed_keys_and_ignores_unbound_ones() {
        let mut cloud = seed::demo();
        cloud.apply(CVM, &bind(&["ins-1e4r6y8i"], ids(&["skey-4e5ty7i8", "skey-11112222"])), "r1", 0).unwrap();
        let outcome = cloud.apply(CVM, &unbind(&["ins-1e4r6y8i", "ins-3e56fg78"], ids(&["skey-4e5ty7i8"])), "r2", 0);
        assert_eq!(results(&outcome.unwrap()).len(), 2);
        assert_eq!(keys_of(&cloud, CVM, "ins-1e4r6y8i"), ["skey-11112222"]);
        assert!(keys_of(&cloud, CVM, "ins-3e56fg78").is_empty());
        let info = &instances_info(&mut cloud, CVM, &["ins-3e56fg78"], 0)[0];
        assert_eq!(info.latest_operation.as_deref(), Some("DisassociateInstancesKeyPairs"));
        assert_eq!(info.latest_operation_request_id.as_deref(), Some("r2"));
    }

    #[test]
    fn cvm_refuses_running_instances_without_force_stop() {
        let mut cloud = seed::demo();
        for force_stop in [None, Some(false)] {
            let mut op = bind(&["ins-1e4r6y8i", "ins-w34e5rl9"], ids(&["skey-4e5ty7i8"]));
            op.force_stop = force_stop;
            let fault = refused(&mut cloud, CVM, &op);
            assert_eq!(fault.code(), Code::InvalidInstanceState);
            assert_eq!(fault.detail(), Some("RUNNING"));
            assert!(fault.message().contains("ins-w34e5rl9"), "{fault}");
        }
    }

    #[test]
    fn cvm_force_stop_binds_a_running_instance_and_starts_it_again() {
        let mut cloud = seed::demo();
        for action in [Action::AssociateKeys, Action::DisassociateKeys] {
            let mut op = op(action, &["ins-w34e5rl9", "ins-1e4r6y8i"], ids(&["skey-4e5ty7i8"]));
            op.force_stop = Some(true);
            cloud.apply(CVM, &op, "r", 0).unwrap();
            assert_eq!(state_of(&cloud, CVM, "ins-w34e5rl9"), "RUNNING");
            assert_eq!(state_of(&cloud, CVM, "ins-1e4r6y8i"), "STOPPED");
        }
        assert!(keys_of(&cloud, CVM, "ins-w34e5rl9").is_empty());
    }

    #[test]
    fn cvm_refuses_other_states_even_with_force_stop() {
        let mut cloud = seed::demo();
        let mut op = bind(&["ins-r7b2t9mx"], ids(&["skey-4e5ty7i8"]));
        op.force_stop = Some(true);
        let fault = refused(&mut cloud, CVM, &op);
        assert_eq!((fault.code(), fault.detail()), (Code::InvalidInstanceState, Some("REBOOTING")));
    }

    #[test]
    fn cvm_refuses_windows() {
        let mut cloud = seed::demo();
        let fault = refused(&mut cloud, CVM, &bind(&["ins-1e4r6y8i", "ins-5wq8v2kd"], ids(&["skey-4e5ty7i8"])));
        assert_eq!(fault.code(), Code::InstanceNotSupported);
        assert!(fault.message().contains("ins-5wq8v2kd"), "{fault}");
    }

    #[test]
    fn cvm_unknown_instances_and_keys_fail_the_whole_batch() {
        let mut cloud = seed::demo();
        let fault = refused(&mut cloud, CVM, &bind(&["ins-1e4r6y8i", "ins-00000000"], ids(&["skey-4e5ty7i8"])));
        assert_eq!(fault.code(), Code::InstanceNotFound);
        assert!(fault.message().contains("ins-00000000"), "{fault}");
        let fault = refused(&mut cloud, CVM, &unbind(&["ins-1e4r6y8i"], ids(&["skey-4e5ty7i8", "skey-00000000"])));
        assert_eq!(fault.code(), Code::KeyNotFound);
        assert!(fault.message().contains("skey-00000000"), "{fault}");
    }

    #[test]
    fn cvm_checks_parameters_before_resources() {
        let mut cloud = seed::demo();
        let cases = [
            (bind(&[], ids(&["skey-4e5ty7i8"])), Code::MissingParameter),
            (bind(&["ins-1e4r6y8i"], ids(&[])), Code::MissingParameter),
            (bind(&["ins-1e4r6y8i"], names(&["finance_joshua"])), Code::InvalidParameter),
            (bind(&["ins-1e4r6y8i", "ins-1e4r6y8i"], ids(&["skey-4e5ty7i8"])), Code::DuplicateValues),
            (bind(&["ins-1e4r6y8i"], ids(&["skey-4e5ty7i8", "skey-4e5ty7i8"])), Code::DuplicateValues),
            (bind(&["ins-1122"], ids(&["skey-4e5ty7i8"])), Code::MalformedInstanceId),
            (bind(&["ins-1e4r6y8i"], ids(&["skey-1122"])), Code::MalformedKeyId),
        ];
        for (op, code) in cases {
            assert_eq!(refused(&mut cloud, CVM, &op).code(), code, "{op:?}");
        }
    }

    #[test]
    fn cvm_batch_limits_come_from_the_mappings() {
        let mut cloud = seed::demo();
        let mut op = bind(&[], ids(&["skey-4e5ty7i8"]));
        op.instances = many("ins-", 101);
        let fault = refused(&mut cloud, CVM, &op);
        assert_eq!(fault.code(), Code::LimitExceeded);
        assert!(fault.message().contains("100"), "{fault}");
        let mut op = bind(&["ins-1e4r6y8i"], Keys::Ids(many("skey-", 101)));
        assert_eq!(refused(&mut cloud, CVM, &op).code(), Code::LimitExceeded);
        // 100 is fine as far as limits go: the first unknown key is what fails.
        op.keys = Keys::Ids(many("skey-", 100));
        assert_eq!(refused(&mut cloud, CVM, &op).code(), Code::KeyNotFound);
    }

    // === Lighthouse ===

    #[test]
    fn lighthouse_binding_is_asynchronous() {
        let mut cloud = seed::demo();
        assert_eq!(cloud.operation_delay_ms(), 500);
        let outcome = cloud.apply(LH, &bind(&["lhins-ruy9d2tw"], ids(&["lhkp-f7rjie1q"])), "f192c1a9", 1_000).unwrap();
        assert_eq!(results(&outcome), [("lhins-ruy9d2tw", Ok(()))]);

        let info = &instances_info(&mut cloud, LH, &["lhins-ruy9d2tw"], 1_499)[0];
        assert_eq!(info.latest_operation_state, Some(OperationState::Operating));
        assert_eq!(info.latest_operation_request_id.as_deref(), Some("f192c1a9"));
        assert_eq!(info.latest_operation.as_deref(), Some("AssociateInstancesKeyPairs"));
        assert!(info.keys.is_empty(), "keys change only when the operation completes");
        assert_eq!(info.state, "STOPPING");

        let info = &instances_info(&mut cloud, LH, &["lhins-ruy9d2tw"], 1_500)[0];
        assert_eq!(info.latest_operation_state, Some(OperationState::Success));
        assert_eq!(info.latest_operation_request_id.as_deref(), Some("f192c1a9"));
        assert_eq!(info.keys, ["lhkp-f7rjie1q"]);
        // Force-stopped for the change, and not started again.
        assert_eq!(info.state, "STOPPED");
    }

    #[test]
    fn lighthouse_tick_completes_due_operations_only() {
        let mut cloud = seed::demo();
        cloud.set_operation_delay_ms(100);
        cloud.apply(LH, &bind(&["lhins-ruy9d2tw"], ids(&["lhkp-f7rjie1q"])), "a", 0).unwrap();
        cloud.apply(LH, &unbind(&["lhins-3k9d8f7s"], ids(&["lhkp-a1b2c3d4"])), "b", 50).unwrap();
        cloud.tick(99);
        assert!(cloud.instance(LH, "lhins-ruy9d2tw").unwrap().is_busy());
        cloud.tick(100);
        assert_eq!(keys_of(&cloud, LH, "lhins-ruy9d2tw"), ["lhkp-f7rjie1q"]);
        let wiki = cloud.instance(LH, "lhins-3k9d8f7s").unwrap();
        assert_eq!(wiki.keys, ["lhkp-a1b2c3d4"]);
        assert_eq!(wiki.latest_operation.as_ref().unwrap().state, OperationState::Operating);
        cloud.tick(150);
        let wiki = cloud.instance(LH, "lhins-3k9d8f7s").unwrap();
        assert!(wiki.keys.is_empty());
        assert_eq!(
            (wiki.state.as_str(), wiki.latest_operation.as_ref().unwrap().state),
            ("STOPPED", OperationState::Success)
        );
    }

    #[test]
    fn lighthouse_refuses_while_the_latest_operation_is_unfinished() {
        let mut cloud = seed::demo();
        cloud.apply(LH, &bind(&["lhins-3k9d8f7s"], ids(&["lhkp-f7rjie1q"])), "first", 0).unwrap();
        let before = cloud.instances(LH).to_vec();
        let fault = cloud.apply(LH, &unbind(&["lhins-3k9d8f7s"], ids(&["lhkp-a1b2c3d4"])), "second", 10).unwrap_err();
        assert_eq!(fault.code(), Code::OperationInProgress);
        assert!(fault.message().contains("lhins-3k9d8f7s"), "{fault}");
        assert_eq!(cloud.instances(LH), before.as_slice());
        // Once it completes, the instance takes new work (binding replaced `lhkp-a1b2c3d4`).
        let fault = cloud.apply(LH, &unbind(&["lhins-3k9d8f7s"], ids(&["lhkp-a1b2c3d4"])), "third", 500).unwrap_err();
        assert_eq!(fault.code(), Code::KeyNotBound);
        cloud.apply(LH, &unbind(&["lhins-3k9d8f7s"], ids(&["lhkp-f7rjie1q"])), "fourth", 500).unwrap();
    }

    #[test]
    fn lighthouse_refuses_binding_a_bound_key_and_unbinding_an_unbound_one() {
        let mut cloud = seed::demo();
        let fault = refused(&mut cloud, LH, &bind(&["lhins-ruy9d2tw", "lhins-3k9d8f7s"], ids(&["lhkp-a1b2c3d4"])));
        assert_eq!(fault.code(), Code::KeyAlreadyBound);
        assert!(fault.message().contains("lhkp-a1b2c3d4") && fault.message().contains("lhins-3k9d8f7s"), "{fault}");
        let fault = refused(&mut cloud, LH, &unbind(&["lhins-ruy9d2tw"], ids(&["lhkp-f7rjie1q"])));
        assert_eq!(fault.code(), Code::KeyNotBound);
    }

    #[test]
    fn lighthouse_accepts_running_or_stopped_linux_only() {
        let mut cloud = seed::demo();
        let fault = refused(&mut cloud, LH, &bind(&["lhins-w1n2d3s4"], ids(&["lhkp-f7rjie1q"])));
        assert_eq!(fault.code(), Code::InstanceNotSupported);
        let odd = Instance::new("lhins-st4rt1ng", "odd", OsFamily::Linux, "Debian", "STARTING");
        cloud.add_instance(LH, odd).unwrap();
        let fault = refused(&mut cloud, LH, &bind(&["lhins-ruy9d2tw", "lhins-st4rt1ng"], ids(&["lhkp-f7rjie1q"])));
        assert_eq!((fault.code(), fault.detail()), (Code::InvalidInstanceState, Some("STARTING")));
        let stopped = cloud.apply(LH, &bind(&["lhins-3k9d8f7s"], ids(&["lhkp-f7rjie1q"])), "r", 0).unwrap();
        assert_eq!(results(&stopped), [("lhins-3k9d8f7s", Ok(()))]);
        assert_eq!(state_of(&cloud, LH, "lhins-3k9d8f7s"), "STOPPED");
    }

    #[test]
    fn lighthouse_checks_ids_and_existence() {
        let mut cloud = seed::demo();
        let cases = [
            (bind(&["lhins-ruy9"], ids(&["lhkp-f7rjie1q"])), Code::MalformedInstanceId),
            (bind(&["ins-1e4r6y8i"], ids(&["lhkp-f7rjie1q"])), Code::MalformedInstanceId),
            (bind(&["lhins-ruy9d2tw"], ids(&["skey-4e5ty7i8"])), Code::MalformedKeyId),
            (bind(&["lhins-00000000"], ids(&["lhkp-f7rjie1q"])), Code::InstanceNotFound),
            (bind(&["lhins-ruy9d2tw"], ids(&["lhkp-00000000"])), Code::KeyNotFound),
            (bind(&["lhins-ruy9d2tw", "lhins-ruy9d2tw"], ids(&["lhkp-f7rjie1q"])), Code::DuplicateValues),
        ];
        for (op, code) in cases {
            assert_eq!(refused(&mut cloud, LH, &op).code(), code, "{op:?}");
        }
    }

    // === ECS ===

    #[test]
    fn ecs_attach_reports_per_instance_and_needs_a_reboot() {
        let mut cloud = seed::demo();
        let op = bind(
            &["i-m5eg7be9ndloji64jknv", "i-m5e25x2mwr0hk33dwv0h", "i-m5ewindows2022srv001", "i-doesnotexist0000000"],
            names(&["FinanceJoshuaV25"]),
        );
        let outcome = cloud.apply(ECS, &op, "473469C7", 0).unwrap();
        assert_eq!(
            results(&outcome),
            [
                ("i-m5eg7be9ndloji64jknv", Ok(())),
                ("i-m5e25x2mwr0hk33dwv0h", Ok(())),
                ("i-m5ewindows2022srv001", Err(Code::InstanceNotSupported)),
                ("i-doesnotexist0000000", Err(Code::InstanceNotFound)),
            ]
        );
        let Answer::Bind(r) = &outcome.answer else { unreachable!() };
        let not_found = r[3].result.as_ref().unwrap_err();
        assert_eq!(not_found.source(), Source::Upstream);
        assert!(not_found.message().contains("i-doesnotexist0000000"), "{not_found}");

        let vm = cloud.instance(ECS, "i-m5eg7be9ndloji64jknv").unwrap();
        assert_eq!(
            (vm.keys.as_slice(), vm.pending_reboot, vm.state.as_str()),
            (&["FinanceJoshuaV25".to_owned()][..], true, "Running")
        );
        assert_eq!(cloud.effective_key(ECS, "i-m5eg7be9ndloji64jknv"), None);
        // Look-ups show the attached key at once.
        assert_eq!(instances_info(&mut cloud, ECS, &["i-m5eg7be9ndloji64jknv"], 0)[0].keys, ["FinanceJoshuaV25"]);

        cloud.reboot(ECS, "i-m5eg7be9ndloji64jknv", 0).unwrap();
        let vm = cloud.instance(ECS, "i-m5eg7be9ndloji64jknv").unwrap();
        assert!(!vm.pending_reboot);
        assert_eq!(cloud.effective_key(ECS, "i-m5eg7be9ndloji64jknv"), Some("FinanceJoshuaV25"));
        assert_eq!(cloud.effective_key(ECS, "i-m5e25x2mwr0hk33dwv0h"), None);
    }

    #[test]
    fn ecs_accepts_any_state_and_a_stopped_instance_applies_the_key_on_start() {
        let mut cloud = seed::demo();
        assert_eq!(cloud.effective_key(ECS, "i-bp1gtjxuuvwj17zrab12"), Some("testKeyPairName"));
        cloud.apply(ECS, &bind(&["i-bp1gtjxuuvwj17zrab12"], names(&["FinanceJoshuaV25"])), "r", 0).unwrap();
        let vm = cloud.instance(ECS, "i-bp1gtjxuuvwj17zrab12").unwrap();
        assert_eq!((vm.keys.as_slice(), vm.pending_reboot), (&["FinanceJoshuaV25".to_owned()][..], true));
        // The old key stays in effect until the instance boots.
        assert_eq!(cloud.effective_key(ECS, "i-bp1gtjxuuvwj17zrab12"), Some("testKeyPairName"));
        let fault = cloud.reboot(ECS, "i-bp1gtjxuuvwj17zrab12", 0).unwrap_err();
        assert_eq!((fault.code(), fault.detail()), (Code::InvalidInstanceState, Some("Stopped")));
        cloud.start(ECS, "i-bp1gtjxuuvwj17zrab12", 0).unwrap();
        assert_eq!(state_of(&cloud, ECS, "i-bp1gtjxuuvwj17zrab12"), "Running");
        assert_eq!(cloud.effective_key(ECS, "i-bp1gtjxuuvwj17zrab12"), Some("FinanceJoshuaV25"));
        cloud.stop(ECS, "i-bp1gtjxuuvwj17zrab12", 0).unwrap();
        assert_eq!(state_of(&cloud, ECS, "i-bp1gtjxuuvwj17zrab12"), "Stopped");
        let fault = cloud.start(ECS, "i-doesnotexist", 0).unwrap_err();
        assert_eq!(fault.code(), Code::InstanceNotFound);
    }

    #[test]
    fn ecs_detach_reports_per_instance() {
        let mut cloud = seed::demo();
        let op = unbind(&["i-bp1gtjxuuvwj17zrab12", "i-m5eg7be9ndloji64jknv"], names(&["testKeyPairName"]));
        let outcome = cloud.apply(ECS, &op, "r", 0).unwrap();
        assert_eq!(
            results(&outcome),
            [("i-bp1gtjxuuvwj17zrab12", Ok(())), ("i-m5eg7be9ndloji64jknv", Err(Code::KeyNotBound))]
        );
        let vm = cloud.instance(ECS, "i-bp1gtjxuuvwj17zrab12").unwrap();
        assert!(vm.keys.is_empty() && vm.pending_reboot);
        assert_eq!(cloud.effective_key(ECS, "i-bp1gtjxuuvwj17zrab12"), Some("testKeyPairName"));
        cloud.start(ECS, "i-bp1gtjxuuvwj17zrab12", 0).unwrap();
        assert_eq!(cloud.effective_key(ECS, "i-bp1gtjxuuvwj17zrab12"), None);
    }

    #[test]
    fn ecs_whole_request_refusals() {
        let mut cloud = seed::demo();
        let mut too_many = bind(&[], names(&["FinanceJoshuaV25"]));
        too_many.instances = (0..51).map(|i| format!("i-m5e{i:017}")).collect();
        let cases = [
            (bind(&["i-m5eg7be9ndloji64jknv"], names(&["NoSuchKey"])), Code::KeyNotFound),
            (bind(&["i-m5eg7be9ndloji64jknv"], names(&[])), Code::MissingParameter),
            (bind(&[], names(&["FinanceJoshuaV25"])), Code::MissingParameter),
            (bind(&["i-m5eg7be9ndloji64jknv"], names(&["FinanceJoshuaV25", "testKeyPairName"])), Code::LimitExceeded),
            (too_many, Code::LimitExceeded),
            (
                bind(&["i-m5eg7be9ndloji64jknv", "i-m5eg7be9ndloji64jknv"], names(&["FinanceJoshuaV25"])),
                Code::DuplicateValues,
            ),
            (bind(&["ins-1e4r6y8i"], names(&["FinanceJoshuaV25"])), Code::MalformedInstanceId),
            (bind(&["i-m5eg7be9ndloji64jknv"], names(&["1bad"])), Code::MalformedKeyId),
        ];
        for (op, code) in cases {
            assert_eq!(refused(&mut cloud, ECS, &op).code(), code, "{op:?}");
        }
        let fifty = (0..50).map(|i| format!("i-m5e{i:017}")).collect::<Vec<_>>();
        let mut op = bind(&[], names(&["FinanceJoshuaV25"]));
        op.instances = fifty;
        let outcome = cloud.apply(ECS, &op, "r", 0).unwrap();
        assert!(results(&outcome).iter().all(|(_, r)| *r == Err(Code::InstanceNotFound)));
    }

    #[test]
    fn ecs_attach_replaces_the_existing_key() {
        let mut cloud = seed::demo();
        cloud.apply(ECS, &bind(&["i-m5eg7be9ndloji64jknv"], names(&["testKeyPairName"])), "r", 0).unwrap();
        cloud.apply(ECS, &bind(&["i-m5eg7be9ndloji64jknv"], names(&["FinanceJoshuaV25"])), "r", 0).unwrap();
        assert_eq!(keys_of(&cloud, ECS, "i-m5eg7be9ndloji64jknv"), ["FinanceJoshuaV25"]);
        // ECS reports no latest operation.
        let info = &instances_info(&mut cloud, ECS, &["i-m5eg7be9ndloji64jknv"], 0)[0];
        assert_eq!((&info.latest_operation, info.latest_operation_state), (&None, None));
    }
}
